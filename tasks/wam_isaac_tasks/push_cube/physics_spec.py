"""The physical-commonsense checks of WAM-Push-Cube (``wam eval``): the cube on the table, pushed by the SCARA tip.

The tip's (x, y) comes from the arm's forward kinematics: every joint turns about z, the shoulder axis stands on the
env origin, and at zero angles the links point along +x (the inverse of :func:`.expert.scara_ik`).
"""

from __future__ import annotations

import math

import torch

from wam_isaac.evaluation.spec import PhysicsSpec
from wam_isaac_assets.builders import pusher as geometry

STEP_DT = 2 * (1 / 50)
"""One env step [s]: ``sim.dt = 1/50`` times ``decimation = 2`` (PushCubeEnvCfg)."""
PENETRATION_TOLERANCE = 0.002
"""Depth [m] below the table top beyond which the cube penetrates (issue 11's bound for a credible contact). A rigid
cube does not sink into a table; the simulator's contacts are compliant: WAM-Push-Cube's impedance is soft at the
surface (``CONTACT_SOLIMP`` in ``push_cube_env_cfg``), so a cube at rest sinks 0.9-1.1 mm. Under the scripted expert
(128 envs x 200 steps, cube over the table) its lowest corner sits 0.99 mm deep (median; p95 1.11, p99 1.22, max 1.61
mm) with white noise 0.1 and 0.95 mm (p95 1.06, max 1.30 mm) without noise: no state exceeds 2 mm."""
TIP_TRAVEL_MARGIN = 0.03
"""Extra distance [m] around tip-cube contact that counts as "near": the tip can move a few centimeters in a step."""


def tip_xy(joint_pos: torch.Tensor) -> torch.Tensor:
    """Tip-sphere center (x, y) in the env frame [m], (..., 2), from the (shoulder, elbow, wrist) angles [rad]."""
    q1 = joint_pos[..., 0]
    q12 = q1 + joint_pos[..., 1]
    q123 = q12 + joint_pos[..., 2]
    l1, l2, tool = geometry.UPPER_ARM_LENGTH, geometry.FOREARM_LENGTH, geometry.TOOL_LENGTH
    x = l1 * torch.cos(q1) + l2 * torch.cos(q12) + tool * torch.cos(q123)
    y = l1 * torch.sin(q1) + l2 * torch.sin(q12) + tool * torch.sin(q123)
    return torch.stack((x, y), dim=-1)


PUSH_CUBE_PHYSICS = PhysicsSpec(
    dt=STEP_DT,
    half_extents=(0.5 * geometry.CUBE_SIZE,) * 3,
    mass=geometry.CUBE_MASS,
    support_height=geometry.TABLE_TOP_Z,
    effector_xy=tip_xy,
    contact_radius=geometry.TIP_RADIUS + 0.5 * math.sqrt(2.0) * geometry.CUBE_SIZE + TIP_TRAVEL_MARGIN,
    penetration_tolerance=PENETRATION_TOLERANCE,
    energy_tolerance=0.005,
    airborne_height=0.005,
    gravity_tolerance=0.5,
    contact_flag_key=None,
    contact_note=(
        "WAM-Push-Cube's contact flags are the net contact of the pusher and of the cube (the tip's push included), not"
        " the cube-table contact this check compares with the cube's height"
    ),
)
"""WAM-Push-Cube's checks: cube 5 cm, nominal 0.2 kg, table top at 0.40 m."""
