"""Observation terms for the privileged (``critic``) group: the physical parameters domain randomization gave
each environment. Pure functions ``f(env, ...) -> Tensor`` as Isaac Lab's own terms. And the group type of what a
WAM predicts and is conditioned on (:class:`TermByTermGroupCfg`), and the tasks' ``previous_action`` group
(:class:`PreviousActionGroupCfg`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.envs.mdp import last_action
from isaaclab.managers import ManagerTermBase, ObservationGroupCfg, ObservationTermCfg, SceneEntityCfg
from isaaclab.utils import configclass

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv

    from .actions import ActuationRandomizedAction


@configclass
class TermByTermGroupCfg(ObservationGroupCfg):
    """An exact observation group whose terms stay separate, so that ``wam generate`` stores each one as
    ``obs/<group>/<term>``: the tasks' ``world_model`` group (the physical state a world model predicts) and
    ``instruction`` group (what it is conditioned on)."""

    def __post_init__(self):
        self.enable_corruption = False
        self.concatenate_terms = False


@configclass
class PreviousActionGroupCfg(ObservationGroupCfg):
    """The action of the previous step (0 after a reset): the ``a_{t-1}`` a joint WAM reads beside the state, the
    tasks' ``previous_action`` group (exact, one concatenated term)."""

    actions = ObservationTermCfg(func=last_action)
    """Previous policy action [1], shape (num_envs, action dim)."""

    def __post_init__(self):
        self.enable_corruption = False
        self.concatenate_terms = True


def body_mass(env: ManagerBasedEnv, asset_cfg: SceneEntityCfg = SceneEntityCfg("robot")) -> torch.Tensor:
    """Mass of the selected bodies [kg], shape (num_envs, num_bodies)."""
    return env.scene[asset_cfg.name].data.body_mass.torch[:, asset_cfg.body_ids]


def joint_damping(env: ManagerBasedEnv, asset_cfg: SceneEntityCfg = SceneEntityCfg("robot")) -> torch.Tensor:
    """Joint drive damping of the selected joints [N m s/rad or N s/m], shape (num_envs, num_joints)."""
    return env.scene[asset_cfg.name].data.joint_damping.torch[:, asset_cfg.joint_ids]


def joint_stiffness(env: ManagerBasedEnv, asset_cfg: SceneEntityCfg = SceneEntityCfg("robot")) -> torch.Tensor:
    """Joint drive stiffness of the selected joints [N m/rad or N/m], shape (num_envs, num_joints)."""
    return env.scene[asset_cfg.name].data.joint_stiffness.torch[:, asset_cfg.joint_ids]


def _action_term(env: ManagerBasedEnv, action_name: str) -> ActuationRandomizedAction:
    return env.action_manager.get_term(action_name)  # type: ignore[return-value]


def action_latency(env: ManagerBasedEnv, action_name: str) -> torch.Tensor:
    """Action latency of each env [control steps], shape (num_envs, 1)."""
    return _action_term(env, action_name).latency.unsqueeze(-1).float()


def action_strength(env: ManagerBasedEnv, action_name: str) -> torch.Tensor:
    """Actuator strength factor of each env [1], shape (num_envs, 1)."""
    return _action_term(env, action_name).strength.unsqueeze(-1)


def newton_shape_friction(env: ManagerBasedEnv, asset) -> torch.Tensor | None:
    """Zero-copy view of the friction coefficient ``mu`` of each collision shape of ``asset`` on the Newton backend
    [1], shape (num_envs, num_shapes); None on other backends.

    This is the array Isaac Lab's Newton material randomization writes; Isaac Lab 3.0 has no public accessor for it,
    so it is read through the asset's Newton view, as that event does.
    """
    manager = env.sim.physics_manager
    view = getattr(asset, "_root_view", None)
    if not hasattr(manager, "get_model") or view is None or not hasattr(view, "get_attribute"):
        return None
    import warp as wp

    return wp.to_torch(view.get_attribute("shape_material_mu", manager.get_model())[:, 0])


class shape_friction(ManagerTermBase):
    """Friction coefficient of the selected bodies' collision shapes [1], shape (num_envs, num_shapes) (all shapes
    of the asset when ``asset_cfg`` selects every body). Newton backend only: other backends raise at construction.
    """

    def __init__(self, cfg: ObservationTermCfg, env: ManagerBasedEnv):
        super().__init__(cfg, env)
        asset_cfg: SceneEntityCfg = cfg.params["asset_cfg"]
        asset = env.scene[asset_cfg.name]
        friction = newton_shape_friction(env, asset)
        if friction is None:
            raise NotImplementedError(
                f"shape_friction reads Newton's model; the physics is {type(env.sim.physics_manager)}"
            )
        self._friction = friction
        if isinstance(asset_cfg.body_ids, slice):
            self._shape_ids = slice(None)
        else:
            # the view's shape axis follows the model's shape order, not the body order: select each body's shapes
            backend_body_ids = asset.map_body_ids_to_backend(asset_cfg.body_ids)
            shapes = [shape for body in backend_body_ids for shape in asset._root_view.body_shapes[body]]
            self._shape_ids = torch.tensor(shapes, dtype=torch.long, device=friction.device)

    def __call__(self, env: ManagerBasedEnv, asset_cfg: SceneEntityCfg) -> torch.Tensor:
        return self._friction[:, self._shape_ids].to(env.device)
