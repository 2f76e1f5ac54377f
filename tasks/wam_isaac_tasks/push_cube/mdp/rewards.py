"""Reward terms of WAM-Push-Cube: dense shaping toward a pushing contact and toward the goal, a one-off success
bonus, and the success-rate metric."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import ManagerTermBase, RewardTermCfg, SceneEntityCfg

from .observations import CUBE, TIP, cube_pos, goal_pos, goal_pos_rel_cube, tip_pos

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


def tip_push_point_kernel(
    env: ManagerBasedRLEnv,
    std: float,
    standoff: float,
    command_name: str = "goal",
    tip_cfg: SceneEntityCfg = TIP,
    cube_cfg: SceneEntityCfg = CUBE,
) -> torch.Tensor:
    """``1 - tanh(d / std)`` [1], shape (num_envs,), where ``d`` [m] is the tip's distance to the push point: the
    point ``standoff`` [m] behind the cube on the goal-to-cube line, where a push moves the cube toward the goal."""
    cube = cube_pos(env, cube_cfg)
    to_goal = goal_pos(env, command_name) - cube
    direction = to_goal / torch.linalg.norm(to_goal, dim=-1, keepdim=True).clamp_min(1e-6)
    push_point = cube - standoff * direction
    return 1.0 - torch.tanh(torch.linalg.norm(tip_pos(env, tip_cfg) - push_point, dim=-1) / std)


def cube_goal_distance_kernel(
    env: ManagerBasedRLEnv, std: float, command_name: str = "goal", cube_cfg: SceneEntityCfg = CUBE
) -> torch.Tensor:
    """``1 - tanh(d / std)`` [1], shape (num_envs,), with ``d`` [m] the cube's horizontal distance to the goal."""
    return 1.0 - torch.tanh(torch.linalg.norm(goal_pos_rel_cube(env, command_name, cube_cfg), dim=-1) / std)


class cube_progress(ManagerTermBase):
    """Rate at which the cube approaches the goal [m/s], shape (num_envs,): ``(d_{t-1} - d_t) / step_dt``, clipped
    to ``+-max_speed``.

    The reward manager multiplies by ``step_dt``, so over an episode the term sums to ``weight * (d_0 - d_T)``
    (a potential-based shaping: it cannot be farmed by moving the cube back and forth) as long as the cube moves
    slower than ``max_speed``; a cube knocked away faster is not being pushed, and the clip keeps one hit from
    dominating a whole batch of returns. It is zero on the first step of an episode, when no previous distance
    exists.
    """

    def __init__(self, cfg: RewardTermCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        self._previous = torch.zeros(env.num_envs, device=env.device)
        self._fresh = torch.ones(env.num_envs, dtype=torch.bool, device=env.device)

    def reset(self, env_ids: torch.Tensor | slice | None = None) -> None:
        self._fresh[slice(None) if env_ids is None else env_ids] = True

    def __call__(
        self,
        env: ManagerBasedRLEnv,
        max_speed: float = 1.0,
        command_name: str = "goal",
        cube_cfg: SceneEntityCfg = CUBE,
    ) -> torch.Tensor:
        distance = torch.linalg.norm(goal_pos_rel_cube(env, command_name, cube_cfg), dim=-1)
        previous = torch.where(self._fresh, distance, self._previous)
        self._previous = distance
        self._fresh[:] = False
        return ((previous - distance) / env.step_dt).clamp(-max_speed, max_speed)


def success_bonus(env: ManagerBasedRLEnv, term_name: str = "success") -> torch.Tensor:
    """``1 / step_dt`` on the step the termination ``term_name`` fires, else 0 [1/s], shape (num_envs,): after the
    reward manager's ``step_dt`` scaling the bonus is exactly the term's weight, whatever the control rate."""
    return env.termination_manager.get_term(term_name).float() / env.step_dt


class push_success_rate(ManagerTermBase):
    """Success metric (zero reward): at each reset, writes into ``extras["log"]["Metrics/success_rate"]`` the
    fraction of the resetting envs whose episode ended by the termination ``term_name`` (the cube at the goal),
    like :class:`isaaclab.envs.mdp.survival_success_rate` does for survival."""

    def reset(self, env_ids: torch.Tensor | slice | None = None) -> None:
        ids = slice(None) if env_ids is None else env_ids
        succeeded = self._env.termination_manager.get_term(self.cfg.params.get("term_name", "success"))[ids]
        self._env.extras.setdefault("log", {})["Metrics/success_rate"] = succeeded.float().mean()

    def __call__(self, env: ManagerBasedRLEnv, term_name: str = "success") -> torch.Tensor:
        return torch.zeros(env.num_envs, device=env.device)


def joint_speed_l2(
    env: ManagerBasedRLEnv, max_speed: float, asset_cfg: SceneEntityCfg = SceneEntityCfg("robot")
) -> torch.Tensor:
    """Sum of squared joint speeds [rad^2/s^2], shape (num_envs,), each speed clipped to ``max_speed`` [rad/s] so
    that one diverging env (see :func:`physics_diverged`) cannot put an unbounded value into the returns."""
    speed = env.scene[asset_cfg.name].data.joint_vel.torch[:, asset_cfg.joint_ids]
    return torch.square(torch.nan_to_num(speed, nan=max_speed).clamp(-max_speed, max_speed)).sum(dim=-1)
