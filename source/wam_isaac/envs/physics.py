"""Physics backend presets shared by the WAM tasks.

Newton with the MuJoCo-Warp solver is the default: it runs kit-less, on the CPU as on ``cuda:N``. PhysX presets are
there for clusters with Isaac Sim (``presets=physx`` or ``presets=isaacsim_physx``); they are not tested here (no
machine of this project has Isaac Sim).

Box-box contacts. Newton builds the MuJoCo model with MuJoCo's native convex collision (``NATIVECCD``) on, and
MuJoCo-Warp then collides two boxes with GJK/EPA plus a contact polygon that is only built when two faces are
parallel within 0.0016 rad (``FACE_TOL`` in ``mujoco_warp/_src/collision_gjk.py``). A cube tilted by more than that
(0.09 degrees) touches the table on one edge (2 contacts) or one corner, rocks onto the opposite edge at the next
step and chatters: pushed across the table it tilted at a median 7 rad/s and sank 1 cm. MuJoCo's primitive box-box
collider (taken when ``NATIVECCD`` is disabled) keeps every penetrating corner as a contact (up to 8), but as ported
to MuJoCo-Warp 3.12 it returns, for two faces exactly flush (a freshly reset cube), phantom contacts at the table's
edge, 449 and 523 mm deep (measured; MuJoCo issue 3476): a resting cube is kicked into the air. The pushed cube
therefore stands on corner spheres (sphere-box contacts, ``wam_isaac_assets.builders.cube``) and no box-box pair is
left in contact; :class:`WamMJWarpSolverCfg` still selects the primitive collider (``native_ccd=False``) for any
box-box pair. Newton exposes no such option, so :class:`NewtonWamMJWarpManager` sets MuJoCo's disable bit on the
model once the solver is built, before the first step (and before any CUDA graph capture).
"""

from __future__ import annotations

import numpy as np

from isaaclab.physics import PhysxAutoCfg
from isaaclab.utils import configclass
from isaaclab_newton.physics import MJWarpSolverCfg, NewtonCfg
from isaaclab_newton.physics.mjwarp_manager import NewtonMJWarpManager
from isaaclab_newton.physics.newton_manager import NewtonManager
from isaaclab_ov.physics import OvPhysxCfg
from isaaclab_physx.physics import PhysxCfg

from isaaclab_tasks.utils import PresetCfg

NATIVECCD_DISABLE_BIT = 1 << 17
"""MuJoCo's ``mjDSBL_NATIVECCD`` (= MuJoCo-Warp's ``DisableBit.NATIVECCD``): off, box-box pairs use the primitive
collider."""


class NewtonWamMJWarpManager(NewtonMJWarpManager):
    """Isaac Lab's MuJoCo-Warp manager, with MuJoCo's native convex collision switchable (see the module doc).

    The name starts with ``Newton``: Isaac Lab picks the asset backend from the manager class's name."""

    @classmethod
    def _build_solver(cls, model, solver_cfg: WamMJWarpSolverCfg) -> None:
        solimp = getattr(solver_cfg, "contact_solimp", None)
        if solimp is not None:
            # Newton's per-shape ``mujoco.geom_solimp``: read when the MuJoCo model is built and at every
            # shape-property update (friction randomization), so it is set before the solver exists
            attribute = model.mujoco.geom_solimp
            attribute.assign(np.tile(np.asarray(solimp, dtype=np.float32), (attribute.shape[0], 1)))
        super()._build_solver(model, solver_cfg)
        if not getattr(solver_cfg, "native_ccd", True):
            solver = NewtonManager._solver
            solver.mj_model.opt.disableflags |= NATIVECCD_DISABLE_BIT
            solver.mjw_model.opt.disableflags |= NATIVECCD_DISABLE_BIT


@configclass
class WamMJWarpSolverCfg(MJWarpSolverCfg):
    """MuJoCo-Warp settings of the WAM tasks: Isaac Lab's, plus the choice of box-box collider."""

    class_type: type[NewtonManager] | str = NewtonWamMJWarpManager
    """Manager class: Isaac Lab's MuJoCo-Warp manager with :attr:`native_ccd` applied."""

    contact_solimp: tuple[float, float, float, float, float] | None = None
    """MuJoCo ``solimp`` (d0, d_width, width [m], midpoint, power) of every collision shape; ``None``: Newton's
    default (0.9, 0.95, 0.001, 0.5, 2). The impedance d sets how much of the contact force the constraint's reference
    acceleration provides: at rest a contact penetrates ``(1 - d) / d`` times the load over the solref stiffness."""

    native_ccd: bool = False
    """MuJoCo's native convex collision (GJK/EPA) for box-box pairs; ``False`` (default here): MuJoCo's primitive
    box-box collider, whose multi-point contacts keep a box flat on a box (Newton's default is ``True``)."""


@configclass
class WamPhysicsCfg(PresetCfg):
    """Physics backend presets; select one with the Hydra preset ``presets=<name>`` (default: ``newton_mjwarp``)."""

    isaacsim_physx: PhysxCfg = PhysxCfg()
    ovphysx: OvPhysxCfg = OvPhysxCfg()
    physx: PhysxAutoCfg = PhysxAutoCfg(isaacsim_physx=isaacsim_physx, ovphysx=ovphysx)
    newton_mjwarp: NewtonCfg = NewtonCfg(solver_cfg=WamMJWarpSolverCfg())
    default: NewtonCfg = newton_mjwarp


def physics_presets(
    njmax: int,
    nconmax: int,
    num_substeps: int = 1,
    cone: str = "pyramidal",
    impratio: float = 1.0,
    native_ccd: bool = False,
    contact_solref: tuple[float, float] | None = None,
    contact_solimp: tuple[float, float, float, float, float] | None = None,
) -> WamPhysicsCfg:
    """Physics presets with a MuJoCo-Warp solver sized for the task.

    Args:
        njmax: Constraint rows per env MuJoCo-Warp allocates (joint limits + contact rows).
        nconmax: Contacts per env MuJoCo-Warp allocates.
        num_substeps: Solver substeps per physics step (the solver's time step is ``sim.dt / num_substeps``).
        cone: Friction cone model (``"pyramidal"`` or ``"elliptic"``).
        impratio: Ratio of frictional to normal constraint impedance (MuJoCo ``impratio``).
        native_ccd: MuJoCo's native convex collision for box-box pairs (see :class:`WamMJWarpSolverCfg`).
        contact_solref: MuJoCo ``solref`` (time constant [s], damping ratio) of every collision shape, written as
            Newton's shape stiffness and damping (:func:`contact_stiffness_damping`); ``None``: Newton's default
            (0.02 s, 1). MuJoCo raises a time constant below two solver steps to two solver steps.
        contact_solimp: MuJoCo ``solimp`` of every collision shape (see :class:`WamMJWarpSolverCfg`).
    """
    newton = NewtonCfg(
        solver_cfg=WamMJWarpSolverCfg(
            njmax=njmax,
            nconmax=nconmax,
            cone=cone,
            impratio=impratio,
            integrator="implicitfast",
            native_ccd=native_ccd,
            contact_solimp=contact_solimp,
        ),
        num_substeps=num_substeps,
        debug_mode=False,
        use_cuda_graph=True,
    )
    if contact_solref is not None:
        newton.default_shape_cfg.ke, newton.default_shape_cfg.kd = contact_stiffness_damping(*contact_solref)
    return WamPhysicsCfg(newton_mjwarp=newton, default=newton)


def contact_stiffness_damping(time_constant: float, damping_ratio: float) -> tuple[float, float]:
    """Newton shape stiffness ``ke`` and damping ``kd`` that Newton's MuJoCo solver turns into ``solref =
    (time_constant [s], damping_ratio)``: the inverse of its ``convert_solref`` (``timeconst = 2 / kd``,
    ``dampratio = kd / 2 * sqrt(1 / ke)``)."""
    kd = 2.0 / time_constant
    ke = (kd / (2.0 * damping_ratio)) ** 2
    return ke, kd


def default_device() -> str:
    """``cuda:0`` where CUDA is available, else ``cpu``: the agents' default device (``agent.device=...`` and
    ``wam train --device`` override it), so that a config never pins a device the machine lacks."""
    import torch

    return "cuda:0" if torch.cuda.is_available() else "cpu"
