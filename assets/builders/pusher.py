"""The table-top pusher: a SCARA-style arm whose joints all turn about Z, so its spherical pusher tip stays at a fixed
height just above the table by construction.

Kinematic chain (root prim ``/pusher``, bodies in order): ``base`` (a 0.5 m pillar welded to the world) ->
``shoulder`` (yaw) -> ``upper_arm`` (0.30 m) -> ``elbow`` (yaw) -> ``forearm`` (0.25 m) -> ``wrist`` (yaw) ->
``pusher`` (a 0.06 m tool arm with a vertical rod down to a sphere). The ``pusher`` body's frame is placed at the
center of the tip sphere, so its world position *is* the tip position. Only the tip sphere collides: the links run
above the cube's top face and the pillar stands off the table's edge.

The table and the cube are procedural Isaac Lab spawner configs (``wam_isaac_assets.robots.pusher``), built from
the dimensions defined here so the arm, the table and the cube agree on one geometry. Frame: the env origin is
on the floor under the shoulder axis; the table's top face is at :data:`TABLE_TOP_Z`, its near edge at
:data:`TABLE_NEAR_X`.
"""

from __future__ import annotations

from pxr import Usd

from . import usd_common as u

TABLE_TOP_Z = 0.40
"""Height of the table's top face above the floor [m]."""
TABLE_SIZE = (0.70, 0.90, 0.05)
"""Table top extents (x, y, z) [m]."""
TABLE_NEAR_X = 0.10
"""x of the table's edge nearest to the arm [m] (the pillar, radius 0.06 m, stands clear of it)."""
CUBE_SIZE = 0.05
"""Edge length of the pushed cube [m]."""
CUBE_MASS = 0.2
"""Nominal mass of the cube [kg] (randomized per env by the task)."""

PILLAR_HEIGHT = 0.50
"""Height of the base pillar [m]; the shoulder sits on top of it."""
PILLAR_RADIUS = 0.06
"""Radius of the base pillar [m]."""
LINK_Z = 0.52
"""Height of the arm's links (the horizontal plane of the SCARA) [m]; above the cube's top (0.45 m)."""
UPPER_ARM_LENGTH = 0.30
"""Shoulder-to-elbow axis distance [m]."""
FOREARM_LENGTH = 0.25
"""Elbow-to-wrist axis distance [m]."""
TOOL_LENGTH = 0.06
"""Horizontal wrist-axis-to-tip distance [m]."""
TIP_RADIUS = 0.02
"""Radius of the pusher's tip sphere [m]."""
TIP_Z = TABLE_TOP_Z + 0.5 * CUBE_SIZE
"""Height of the tip sphere's center [m]: the cube's mid-height, 5 mm of clearance over the table."""

BASE_MASS = 5.0
"""Pillar mass [kg] (welded to the world; it only matters to the articulation's bookkeeping)."""
UPPER_ARM_MASS = 1.5
"""Upper-arm mass [kg] (an aluminium box beam with the elbow motor)."""
FOREARM_MASS = 1.0
"""Forearm mass [kg] (with the wrist motor)."""
PUSHER_MASS = 0.3
"""Tool mass [kg] (short arm, vertical rod and tip sphere)."""

SHOULDER_LIMIT_DEG = 110.0
"""Shoulder yaw range [deg], symmetric."""
ELBOW_LIMIT_DEG = 155.0
"""Elbow yaw range [deg], symmetric."""
WRIST_LIMIT_DEG = 160.0
"""Wrist yaw range [deg], symmetric."""
SHOULDER_EFFORT = 30.0
"""Shoulder effort limit [N m]."""
ELBOW_EFFORT = 15.0
"""Elbow effort limit [N m]."""
WRIST_EFFORT = 4.0
"""Wrist effort limit [N m]."""
JOINT_VELOCITY_LIMIT_DEG = 180.0
"""Velocity limit of every joint [deg/s]."""

_METAL = (0.55, 0.57, 0.6)
_ORANGE = (0.95, 0.45, 0.1)
_DARK = (0.15, 0.15, 0.17)


def build() -> Usd.Stage:
    """Author the pusher arm (root prim ``/pusher``; joints ``shoulder``, ``elbow``, ``wrist``)."""
    stage, root = u.new_stage("pusher")
    u.articulation_root(stage.GetPrimAtPath(root))
    tip_material = u.physics_material(stage, str(root.AppendChild("tip_material")), 0.5, 0.5)

    # pillar: frame at the floor, welded to the world
    pillar_size = (2 * PILLAR_RADIUS, 2 * PILLAR_RADIUS, PILLAR_HEIGHT)
    base = u.rigid_body(
        stage,
        root.AppendChild("base"),
        (0.0, 0.0, 0.0),
        BASE_MASS,
        u.cylinder_inertia(BASE_MASS, PILLAR_RADIUS, PILLAR_HEIGHT),
        center_of_mass=(0.0, 0.0, PILLAR_HEIGHT / 2),
    )
    u.cylinder(
        stage,
        base.path.AppendChild("visual"),
        PILLAR_RADIUS,
        pillar_size[2],
        offset=(0.0, 0.0, PILLAR_HEIGHT / 2),
        color=_DARK,
        collide=False,
    )
    u.fixed_joint(stage, root.AppendChild("root_joint"), None, base)

    shoulder = (0.0, 0.0, LINK_Z)
    elbow = (UPPER_ARM_LENGTH, 0.0, LINK_Z)
    wrist = (UPPER_ARM_LENGTH + FOREARM_LENGTH, 0.0, LINK_Z)
    tip = (wrist[0] + TOOL_LENGTH, 0.0, TIP_Z)
    max_velocity = JOINT_VELOCITY_LIMIT_DEG

    # upper arm: frame on the shoulder axis, a box beam reaching to the elbow
    upper_size = (UPPER_ARM_LENGTH + 0.06, 0.06, 0.04)
    upper_com = (UPPER_ARM_LENGTH / 2, 0.0, 0.0)
    upper = u.rigid_body(
        stage,
        root.AppendChild("upper_arm"),
        shoulder,
        UPPER_ARM_MASS,
        u.box_inertia(UPPER_ARM_MASS, upper_size),
        center_of_mass=upper_com,
    )
    u.box(stage, upper.path.AppendChild("visual"), upper_size, offset=upper_com, color=_METAL, collide=False)
    u.revolute_joint(
        stage,
        root.AppendChild("shoulder"),
        base,
        upper,
        anchor=shoulder,
        axis="Z",
        limit_deg=(-SHOULDER_LIMIT_DEG, SHOULDER_LIMIT_DEG),
        max_force=SHOULDER_EFFORT,
        max_velocity_deg=max_velocity,
    )

    # forearm: frame on the elbow axis; rides just above the upper arm
    fore_size = (FOREARM_LENGTH + 0.05, 0.05, 0.035)
    fore_com = (FOREARM_LENGTH / 2, 0.0, 0.0)
    fore = u.rigid_body(
        stage,
        root.AppendChild("forearm"),
        elbow,
        FOREARM_MASS,
        u.box_inertia(FOREARM_MASS, fore_size),
        center_of_mass=fore_com,
    )
    u.box(
        stage, fore.path.AppendChild("visual"), fore_size, offset=(fore_com[0], 0.0, 0.04), color=_METAL, collide=False
    )
    u.revolute_joint(
        stage,
        root.AppendChild("elbow"),
        upper,
        fore,
        anchor=elbow,
        axis="Z",
        limit_deg=(-ELBOW_LIMIT_DEG, ELBOW_LIMIT_DEG),
        max_force=ELBOW_EFFORT,
        max_velocity_deg=max_velocity,
    )

    # pusher tool: frame at the tip sphere's center (so the body position is the tip position)
    rod_length = LINK_Z - TIP_Z
    tool_com = (-TOOL_LENGTH / 2, 0.0, rod_length / 2)
    pusher = u.rigid_body(
        stage,
        root.AppendChild("pusher"),
        tip,
        PUSHER_MASS,
        u.box_inertia(PUSHER_MASS, (TOOL_LENGTH + 2 * TIP_RADIUS, 2 * TIP_RADIUS, rod_length + TIP_RADIUS)),
        center_of_mass=tool_com,
    )
    u.box(
        stage,
        pusher.path.AppendChild("tool_visual"),
        (TOOL_LENGTH + 0.03, 0.03, 0.02),
        offset=(-TOOL_LENGTH / 2, 0.0, rod_length + 0.08),
        color=_METAL,
        collide=False,
    )
    u.cylinder(
        stage,
        pusher.path.AppendChild("rod_visual"),
        0.008,
        rod_length + 0.08,
        offset=(0.0, 0.0, (rod_length + 0.08) / 2),
        color=_METAL,
        collide=False,
    )
    u.sphere(stage, pusher.path.AppendChild("tip"), TIP_RADIUS, color=_ORANGE, material=tip_material)
    u.revolute_joint(
        stage,
        root.AppendChild("wrist"),
        fore,
        pusher,
        anchor=wrist,
        axis="Z",
        limit_deg=(-WRIST_LIMIT_DEG, WRIST_LIMIT_DEG),
        max_force=WRIST_EFFORT,
        max_velocity_deg=max_velocity,
    )
    return stage
