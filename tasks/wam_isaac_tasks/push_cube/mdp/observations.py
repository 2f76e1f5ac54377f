"""Observation terms of WAM-Push-Cube. Positions are horizontal (x, y) in the env frame: the tip moves in a plane
at a fixed height, and the cube slides on the table."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg
from isaaclab.utils.math import euler_xyz_from_quat

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

    from .commands import GoalOnTableCommand

TIP = SceneEntityCfg("robot", body_names=["pusher"])
"""The arm's ``pusher`` body; its frame is the center of the tip sphere."""
CUBE = SceneEntityCfg("cube")
"""The pushed cube."""


def tip_pos(env: ManagerBasedRLEnv, tip_cfg: SceneEntityCfg = TIP) -> torch.Tensor:
    """Tip position in the env frame [m], shape (num_envs, 2)."""
    body = env.scene[tip_cfg.name].data.body_pos_w.torch[:, tip_cfg.body_ids[0]]
    return body[:, :2] - env.scene.env_origins[:, :2]


def cube_pos(env: ManagerBasedRLEnv, cube_cfg: SceneEntityCfg = CUBE) -> torch.Tensor:
    """Cube position in the env frame [m], shape (num_envs, 2)."""
    return env.scene[cube_cfg.name].data.root_pos_w.torch[:, :2] - env.scene.env_origins[:, :2]


def goal_pos(env: ManagerBasedRLEnv, command_name: str = "goal") -> torch.Tensor:
    """Goal position in the env frame [m], shape (num_envs, 2)."""
    return env.command_manager.get_command(command_name)


def cube_pos_rel_tip(
    env: ManagerBasedRLEnv, tip_cfg: SceneEntityCfg = TIP, cube_cfg: SceneEntityCfg = CUBE
) -> torch.Tensor:
    """Cube position minus tip position [m], shape (num_envs, 2)."""
    return cube_pos(env, cube_cfg) - tip_pos(env, tip_cfg)


def goal_pos_rel_cube(
    env: ManagerBasedRLEnv, command_name: str = "goal", cube_cfg: SceneEntityCfg = CUBE
) -> torch.Tensor:
    """Goal position minus cube position [m], shape (num_envs, 2)."""
    return goal_pos(env, command_name) - cube_pos(env, cube_cfg)


def cube_yaw_features(env: ManagerBasedRLEnv, cube_cfg: SceneEntityCfg = CUBE) -> torch.Tensor:
    """(sin, cos) of four times the cube's yaw [1], shape (num_envs, 2): invariant to the cube's 90-degree symmetry,
    so equivalent orientations look the same."""
    _, _, yaw = euler_xyz_from_quat(env.scene[cube_cfg.name].data.root_quat_w.torch)
    return torch.stack((torch.sin(4.0 * yaw), torch.cos(4.0 * yaw)), dim=-1)


def goal_command(env: ManagerBasedRLEnv, command_name: str = "goal") -> GoalOnTableCommand:
    """The goal command term (for terms that need more than the command tensor)."""
    return env.command_manager.get_term(command_name)  # type: ignore[return-value]
