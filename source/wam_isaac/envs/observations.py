"""Observation terms for the privileged (``critic``) group: the physical parameters domain randomization gave
each environment. Pure functions ``f(env, ...) -> Tensor`` as Isaac Lab's own terms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv

    from .actions import ActuationRandomizedAction


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
