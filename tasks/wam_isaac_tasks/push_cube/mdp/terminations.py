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


def physics_diverged(
    env: ManagerBasedRLEnv,
    max_joint_speed: float,
    max_cube_speed: float,
    robot_cfg: SceneEntityCfg = SceneEntityCfg("robot"),
    cube_cfg: SceneEntityCfg = CUBE,
) -> torch.Tensor:
    """Safety net: an arm joint faster than ``max_joint_speed`` [rad/s], the cube faster than ``max_cube_speed``
    [m/s], or any non-finite state, shape (num_envs,) bool. Such an env is reset rather than trained on."""
    joint_vel = env.scene[robot_cfg.name].data.joint_vel.torch[:, robot_cfg.joint_ids]
    cube = env.scene[cube_cfg.name].data
    cube_state = torch.cat((cube.root_pos_w.torch, cube.root_lin_vel_w.torch), dim=-1)
    finite = torch.isfinite(joint_vel).all(dim=-1) & torch.isfinite(cube_state).all(dim=-1)
    too_fast = (joint_vel.abs() > max_joint_speed).any(dim=-1) | (
        torch.linalg.norm(cube.root_lin_vel_w.torch, dim=-1) > max_cube_speed
    )
    return ~finite | too_fast
