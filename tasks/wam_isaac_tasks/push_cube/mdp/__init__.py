"""Task-specific MDP terms of WAM-Push-Cube: the goal command, observations, rewards and terminations.

Everything is a pure function ``f(env, ...) -> Tensor`` (or a small stateful term class where a term must remember
the previous step), reading positions in the env frame (world position minus the env origin; the arm's base sits
unrotated at the env origin, so the env frame is also the arm's base frame).
"""

from __future__ import annotations

from .commands import GoalOnTableCommand, GoalOnTableCommandCfg
from .observations import (
    cube_pos_rel_tip,
    cube_yaw_features,
    goal_pos_rel_cube,
    tip_pos,
)
from .rewards import (
    cube_goal_distance_kernel,
    cube_progress,
    joint_speed_l2,
    push_success_rate,
    success_bonus,
    tip_push_point_kernel,
)
from .terminations import cube_at_goal, cube_off_table, physics_diverged

__all__ = [
    "GoalOnTableCommand",
    "GoalOnTableCommandCfg",
    "cube_at_goal",
    "cube_goal_distance_kernel",
    "cube_off_table",
    "cube_pos_rel_tip",
    "cube_progress",
    "cube_yaw_features",
    "goal_pos_rel_cube",
    "joint_speed_l2",
    "physics_diverged",
    "push_success_rate",
    "success_bonus",
    "tip_pos",
    "tip_push_point_kernel",
]
