"""What the dynamics labels of WAM-Push-Cube cover: penetration against the table top (the table itself excluded),
and the relative poses tip -> cube -> goal."""

from __future__ import annotations

from wam_isaac.labels.labeler import LabelerCfg
from wam_isaac_assets.builders import pusher as geometry

PUSH_CUBE_LABELS = LabelerCfg(
    contact_threshold=0.1,
    plane_height=geometry.TABLE_TOP_Z,
    penetration_exclude=("table",),
    end_effector=("robot", "pusher"),
    object_name="cube",
    goal_command="goal",
)
"""Labeler configuration of WAM-Push-Cube."""
