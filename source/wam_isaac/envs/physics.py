"""Physics backend presets shared by the WAM tasks.

Newton with the MuJoCo-Warp solver is the default: it runs kit-less, on the CPU as on ``cuda:N``. PhysX presets are
there for clusters with Isaac Sim (``presets=physx`` or ``presets=isaacsim_physx``); they are not tested here (no
machine of this project has Isaac Sim).
"""

from __future__ import annotations

from isaaclab.physics import PhysxAutoCfg
from isaaclab.utils import configclass
from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg
from isaaclab_ov.physics import OvPhysxCfg
from isaaclab_physx.physics import PhysxCfg

from isaaclab_tasks.utils import PresetCfg


@configclass
class WamPhysicsCfg(PresetCfg):
    """Physics backend presets; select one with the Hydra preset ``presets=<name>`` (default: ``newton_mjwarp``)."""

    isaacsim_physx: PhysxCfg = PhysxCfg()
    ovphysx: OvPhysxCfg = OvPhysxCfg()
    physx: PhysxAutoCfg = PhysxAutoCfg(isaacsim_physx=isaacsim_physx, ovphysx=ovphysx)
    newton_mjwarp: NewtonCfg = NewtonCfg(solver_cfg=MJWarpSolverCfg())
    default: NewtonCfg = newton_mjwarp


def physics_presets(
    njmax: int, nconmax: int, num_substeps: int = 1, cone: str = "pyramidal", impratio: float = 1.0
) -> WamPhysicsCfg:
    """Physics presets with a MuJoCo-Warp solver sized for the task.

    Args:
        njmax: Constraint rows per env MuJoCo-Warp allocates (joint limits + contact rows).
        nconmax: Contacts per env MuJoCo-Warp allocates.
        num_substeps: Solver substeps per physics step.
        cone: Friction cone model (``"pyramidal"`` or ``"elliptic"``).
        impratio: Ratio of frictional to normal constraint impedance (MuJoCo ``impratio``).
    """
    newton = NewtonCfg(
        solver_cfg=MJWarpSolverCfg(
            njmax=njmax, nconmax=nconmax, cone=cone, impratio=impratio, integrator="implicitfast"
        ),
        num_substeps=num_substeps,
        debug_mode=False,
        use_cuda_graph=True,
    )
    return WamPhysicsCfg(newton_mjwarp=newton, default=newton)


def default_device() -> str:
    """``cuda:0`` where CUDA is available, else ``cpu``: the agents' default device (``agent.device=...`` and
    ``wam train --device`` override it), so that a config never pins a device the machine lacks."""
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"
