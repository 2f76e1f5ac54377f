"""The goal of WAM-Push-Cube: a point on the table, sampled per env at every episode reset."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from isaaclab.managers import CommandTerm, CommandTermCfg
from isaaclab.utils import configclass

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


class GoalOnTableCommand(CommandTerm):
    """Samples a goal position for the cube uniformly in a rectangle of the table (env frame).

    The command is the goal's (x, y) in the env frame [m], shape (num_envs, 2). With a resampling time longer than
    the episode, the goal changes only at resets. Logged metric: ``distance``, the cube's horizontal distance to
    the goal [m], averaged over the episode.
    """

    cfg: GoalOnTableCommandCfg

    def __init__(self, cfg: GoalOnTableCommandCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        self._cube = env.scene[cfg.object_name]
        self.goal_xy = torch.zeros(self.num_envs, 2, device=self.device)
        """Goal position in the env frame [m], shape (num_envs, 2)."""
        self.metrics["distance"] = torch.zeros(self.num_envs, device=self.device)

    @property
    def command(self) -> torch.Tensor:
        """Goal position in the env frame [m], shape (num_envs, 2)."""
        return self.goal_xy

    @property
    def goal_pos_w(self) -> torch.Tensor:
        """Goal position in the world frame (z of the env origin) [m], shape (num_envs, 3)."""
        origins = self._env.scene.env_origins
        return torch.cat((origins[:, :2] + self.goal_xy, origins[:, 2:3]), dim=-1)

    def _resample_command(self, env_ids: Sequence[int] | torch.Tensor | slice):
        n = self.goal_xy[env_ids].shape[0]
        x = torch.empty(n, device=self.device).uniform_(*self.cfg.x_range)
        y = torch.empty(n, device=self.device).uniform_(*self.cfg.y_range)
        self.goal_xy[env_ids] = torch.stack((x, y), dim=-1)

    def _update_command(self):
        pass

    def _update_metrics(self):
        cube_xy = self._cube.data.root_pos_w.torch[:, :2] - self._env.scene.env_origins[:, :2]
        self.metrics["distance"] = torch.linalg.norm(cube_xy - self.goal_xy, dim=-1)


@configclass
class GoalOnTableCommandCfg(CommandTermCfg):
    """Configuration of :class:`GoalOnTableCommand`."""

    class_type: type = GoalOnTableCommand

    object_name: str = "cube"
    """Scene entity whose distance to the goal is logged."""

    x_range: tuple[float, float] = (0.46, 0.56)
    """Range of the goal's x in the env frame [m]."""

    y_range: tuple[float, float] = (-0.15, 0.15)
    """Range of the goal's y in the env frame [m]."""

    resampling_time_range: tuple[float, float] = (1.0e6, 1.0e6)
    """Time between resamplings [s]; longer than any episode, so the goal changes only at resets."""
