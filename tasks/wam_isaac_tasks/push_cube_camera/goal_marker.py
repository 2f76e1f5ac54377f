"""A visible goal for the camera: a flat disc on the table that follows the Push-Cube goal command.

Isaac Lab applies ``reset`` events before it resamples commands, so an event could only place the marker at the
previous episode's goal; the command term itself moves the marker right after it draws a new goal.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch

from isaaclab.utils import configclass

from wam_isaac_assets.builders import pusher as geometry

from ..push_cube.mdp.commands import GoalOnTableCommand, GoalOnTableCommandCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

MARKER_THICKNESS = 0.002
"""Height of the goal disc [m]; it lies on the table top (visual only: it has no collision shape)."""


class GoalWithMarkerCommand(GoalOnTableCommand):
    """:class:`GoalOnTableCommand` that also puts the scene's goal marker (a kinematic, collision-free body) on the
    goal each time it draws one."""

    cfg: GoalWithMarkerCommandCfg

    def __init__(self, cfg: GoalWithMarkerCommandCfg, env: ManagerBasedRLEnv):
        super().__init__(cfg, env)
        self._marker = env.scene[cfg.marker_name]

    def _resample_command(self, env_ids: Sequence[int] | torch.Tensor | slice):
        super()._resample_command(env_ids)
        ids = torch.arange(self.num_envs, device=self.device)[env_ids]
        pose = torch.zeros(len(ids), 7, device=self.device)
        pose[:, :2] = self._env.scene.env_origins[ids, :2] + self.goal_xy[ids]
        pose[:, 2] = self._env.scene.env_origins[ids, 2] + geometry.TABLE_TOP_Z + 0.5 * MARKER_THICKNESS
        pose[:, 6] = 1.0  # identity quaternion, xyzw
        self._marker.write_root_pose_to_sim_index(root_pose=pose, env_ids=ids)


@configclass
class GoalWithMarkerCommandCfg(GoalOnTableCommandCfg):
    """Configuration of :class:`GoalWithMarkerCommand`."""

    class_type: type = GoalWithMarkerCommand

    marker_name: str = "goal_marker"
    """Scene entity drawn at the goal."""
