"""Termination terms of WAM-Push-Cube."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

from .observations import CUBE, goal_pos_rel_cube

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


def cube_at_goal(
    env: ManagerBasedRLEnv, threshold: float = 0.02, command_name: str = "goal", cube_cfg: SceneEntityCfg = CUBE
) -> torch.Tensor:
    """Success: the cube's center is within ``threshold`` [m] of the goal horizontally, shape (num_envs,) bool."""
    return torch.linalg.norm(goal_pos_rel_cube(env, command_name, cube_cfg), dim=-1) < threshold


def cube_off_table(env: ManagerBasedRLEnv, min_height: float, cube_cfg: SceneEntityCfg = CUBE) -> torch.Tensor:
    """Failure: the cube's center fell below ``min_height`` [m, world z] (off the table), shape (num_envs,) bool."""
    return env.scene[cube_cfg.name].data.root_pos_w.torch[:, 2] < min_height
