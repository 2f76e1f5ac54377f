"""Read back, per env, the physical parameters domain randomization gave it.

Rather than recording what each event sampled, the values are read from the simulator itself (masses, joint
gains and friction, shape friction) and from the action pipeline (latency, strength): what is read is what the
physics uses, whichever event (or override) set it. Datasets record these per episode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.assets import BaseArticulation, BaseRigidObject

from .actions import ActuationRandomizedAction

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv


def read_dr_params(env: ManagerBasedEnv) -> dict[str, torch.Tensor]:
    """The randomizable physical parameters of every env, keyed ``<asset>/<parameter>`` or
    ``action/<term>/<parameter>``; each tensor's first dimension is ``num_envs``.

    - ``<asset>/body_mass`` [kg], shape (num_envs, num_bodies), for rigid objects and articulations;
    - ``<asset>/joint_stiffness`` [N m/rad | N/m], ``<asset>/joint_damping`` [N m s/rad | N s/m],
      ``<asset>/joint_friction`` [1], shape (num_envs, num_joints), for articulations;
    - ``<asset>/shape_friction`` [1], shape (num_envs, num_shapes), on the Newton backend (whose per-shape
      friction coefficient ``mu`` is what its material randomization writes);
    - ``action/<term>/latency`` [control steps] and ``action/<term>/strength`` [1], shape (num_envs,), for each
      :class:`~wam_isaac.envs.actions.ActuationRandomizedAction` term.
    """
    params: dict[str, torch.Tensor] = {}
    for name, asset in {**env.scene.articulations, **env.scene.rigid_objects}.items():
        data = asset.data
        params[f"{name}/body_mass"] = data.body_mass.torch.clone()
        if isinstance(asset, BaseArticulation):
            params[f"{name}/joint_stiffness"] = data.joint_stiffness.torch.clone()
            params[f"{name}/joint_damping"] = data.joint_damping.torch.clone()
            params[f"{name}/joint_friction"] = data.joint_friction_coeff.torch.clone()
        friction = _newton_shape_friction(env, asset)
        if friction is not None:
            params[f"{name}/shape_friction"] = friction
    for term_name in env.action_manager.active_terms:
        term = env.action_manager.get_term(term_name)
        if isinstance(term, ActuationRandomizedAction):
            params[f"action/{term_name}/latency"] = term.latency.clone()
            params[f"action/{term_name}/strength"] = term.strength.clone()
    return params


def _newton_shape_friction(env: ManagerBasedEnv, asset: BaseArticulation | BaseRigidObject) -> torch.Tensor | None:
    """Per-shape friction coefficients of ``asset`` on Newton, shape (num_envs, num_shapes); None elsewhere."""
    manager = env.sim.physics_manager
    get_model = getattr(manager, "get_model", None)
    view = getattr(asset, "_root_view", None)
    if get_model is None or view is None or not hasattr(view, "get_attribute"):
        return None
    import warp as wp

    # the same binding Isaac Lab's Newton material randomization writes (isaaclab_newton.envs.mdp.events)
    return wp.to_torch(view.get_attribute("shape_material_mu", get_model())[:, 0]).clone()
