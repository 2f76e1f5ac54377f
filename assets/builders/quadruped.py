"""A 12-DoF quadruped with the proportions of a ~12 kg robot dog (Unitree Go1/A1 class).

A floating trunk (``base``) carries four legs ``FL``, ``FR``, ``RL``, ``RR`` (front/rear, left/right). Each leg is a
chain ``<leg>_hip`` -> ``<leg>_thigh`` -> ``<leg>_calf`` -> ``<leg>_foot`` with three revolute joints

- ``<leg>_hip_joint``: abduction about X, at the hip (``+-HIP_OFFSET``) of the trunk;
- ``<leg>_thigh_joint``: flexion about Y, ``THIGH_OFFSET_Y`` further out;
- ``<leg>_calf_joint``: the knee, about Y, ``THIGH_LENGTH`` below the thigh joint;

and a spherical foot welded (fixed joint) ``CALF_LENGTH`` below the knee, its own body so that contact sensors and
rewards can address the feet by name. All joints at zero is the leg hanging straight down; a positive thigh angle
swings the foot backward, a negative calf angle folds the knee backward (Unitree's convention).

There is no joint to the world: the trunk is the root body of a floating-base articulation (Newton's USD importer
adds a free joint for it), and the articulation root API sits on the default prim.

Collision shapes are primitives: a box trunk, capsule thighs and calves, sphere feet. Hips are visual only.
"""

from __future__ import annotations

from pxr import Sdf, Usd, UsdGeom, UsdShade

from . import usd_common as u

TRUNK_SIZE = (0.37, 0.19, 0.11)
"""Trunk box extents [m] (x forward, y left, z up)."""
TRUNK_MASS = 6.0
"""Trunk mass [kg] (body, battery and electronics)."""
HIP_OFFSET = (0.18, 0.05)
"""Hip-abduction joint position relative to the trunk center [m] (x, y), mirrored per leg."""
HIP_MASS = 0.5
"""Hip link mass [kg] (the abduction motor housing)."""
HIP_RADIUS = 0.045
"""Radius of the hip motor housing (visual cylinder along Y) [m]."""
THIGH_OFFSET_Y = 0.08
"""Lateral offset from the hip-abduction joint to the thigh joint [m]."""
THIGH_LENGTH = 0.2
"""Thigh length, thigh joint to knee [m]."""
THIGH_RADIUS = 0.022
"""Thigh capsule radius [m]."""
THIGH_MASS = 0.8
"""Thigh mass [kg] (carries the knee motor)."""
CALF_LENGTH = 0.2
"""Calf length, knee to foot center [m]."""
CALF_RADIUS = 0.013
"""Calf capsule radius [m]."""
CALF_MASS = 0.2
"""Calf mass [kg]."""
FOOT_RADIUS = 0.02
"""Foot sphere radius [m]."""
FOOT_MASS = 0.05
"""Foot mass [kg] (rubber pad)."""

HIP_LIMIT_DEG = (-46.0, 46.0)
"""Hip abduction range [deg] (about +-0.80 rad)."""
THIGH_LIMIT_DEG = (-60.0, 240.0)
"""Thigh flexion range [deg] (about -1.05 to 4.19 rad; wide enough to recover from a fall)."""
CALF_LIMIT_DEG = (-154.5, -52.5)
"""Knee range [deg] (about -2.70 to -0.92 rad; the knee always folds backward)."""
HIP_EFFORT = 23.7
"""Hip and thigh motor torque limit [N m]."""
CALF_EFFORT = 35.55
"""Knee torque limit [N m] (an extra 1.5:1 reduction behind the motor)."""
HIP_VELOCITY_DEG = 1724.0
"""Hip and thigh speed limit [deg/s] (30.1 rad/s)."""
CALF_VELOCITY_DEG = 1149.0
"""Knee speed limit [deg/s] (20.06 rad/s)."""

LEGS = {"FL": (1.0, 1.0), "FR": (1.0, -1.0), "RL": (-1.0, 1.0), "RR": (-1.0, -1.0)}
"""Leg name -> (x sign, y sign) of its hip on the trunk. The order is the order the legs are authored in."""

TOTAL_MASS = TRUNK_MASS + 4 * (HIP_MASS + THIGH_MASS + CALF_MASS + FOOT_MASS)
"""Mass of the whole robot [kg] (12.2 kg)."""

_TRUNK_COLOR = (0.25, 0.25, 0.3)
_LINK_COLOR = (0.8, 0.8, 0.82)
_FOOT_COLOR = (0.1, 0.1, 0.1)


def build() -> Usd.Stage:
    """Author the quadruped stage (root prim ``/quadruped``; bodies ``base`` and ``<leg>_{hip,thigh,calf,foot}``)."""
    stage, root = u.new_stage("quadruped")
    u.articulation_root(stage.GetPrimAtPath(root))
    # rubber feet grip; the other links slide (they should not touch the ground in a gait)
    UsdGeom.Scope.Define(stage, root.AppendChild("materials"))
    foot_material = u.physics_material(stage, root.AppendPath("materials/foot"), 1.0, 0.8)
    body_material = u.physics_material(stage, root.AppendPath("materials/body"), 0.6, 0.5)

    base_inertia = u.box_inertia(TRUNK_MASS, TRUNK_SIZE)
    base = u.rigid_body(stage, root.AppendChild("base"), (0.0, 0.0, 0.0), TRUNK_MASS, base_inertia)
    u.box(stage, base.path.AppendChild("collision"), TRUNK_SIZE, color=_TRUNK_COLOR, material=body_material)
    for name, (sign_x, sign_y) in LEGS.items():
        _leg(stage, root, base, name, sign_x, sign_y, foot_material, body_material)
    return stage


def _leg(
    stage: Usd.Stage,
    root: Sdf.Path,
    base: u.Body,
    name: str,
    sign_x: float,
    sign_y: float,
    foot_material: UsdShade.Material,
    body_material: UsdShade.Material,
) -> None:
    """Author one leg (hip, thigh, calf, foot bodies and their joints), hanging straight down from the hip."""
    hip_pos = (sign_x * HIP_OFFSET[0], sign_y * HIP_OFFSET[1], 0.0)
    thigh_pos = (hip_pos[0], hip_pos[1] + sign_y * THIGH_OFFSET_Y, 0.0)
    knee_pos = (thigh_pos[0], thigh_pos[1], -THIGH_LENGTH)
    foot_pos = (thigh_pos[0], thigh_pos[1], -THIGH_LENGTH - CALF_LENGTH)

    # hip: the abduction motor housing, a cylinder along Y between the trunk and the thigh
    hip_center = (0.0, sign_y * THIGH_OFFSET_Y / 2, 0.0)
    hip = u.rigid_body(
        stage,
        root.AppendChild(f"{name}_hip"),
        hip_pos,
        HIP_MASS,
        u.cylinder_inertia(HIP_MASS, HIP_RADIUS, THIGH_OFFSET_Y, axis="Y"),
        center_of_mass=hip_center,
    )
    u.cylinder(
        stage,
        hip.path.AppendChild("visual"),
        HIP_RADIUS,
        THIGH_OFFSET_Y,
        axis="Y",
        offset=hip_center,
        color=_LINK_COLOR,
        collide=False,
    )
    u.revolute_joint(
        stage,
        root.AppendChild(f"{name}_hip_joint"),
        base,
        hip,
        anchor=hip_pos,
        axis="X",
        limit_deg=HIP_LIMIT_DEG,
        max_force=HIP_EFFORT,
        max_velocity_deg=HIP_VELOCITY_DEG,
    )

    # thigh: mass centered halfway down; the capsule stops short of both joints so it never overlaps the trunk
    thigh_center = (0.0, 0.0, -THIGH_LENGTH / 2)
    thigh = u.rigid_body(
        stage,
        root.AppendChild(f"{name}_thigh"),
        thigh_pos,
        THIGH_MASS,
        u.capsule_inertia(THIGH_MASS, THIGH_RADIUS, THIGH_LENGTH - 2 * THIGH_RADIUS, axis="Z"),
        center_of_mass=thigh_center,
    )
    u.capsule(
        stage,
        thigh.path.AppendChild("collision"),
        THIGH_RADIUS,
        THIGH_LENGTH - 2 * THIGH_RADIUS,
        axis="Z",
        offset=thigh_center,
        color=_LINK_COLOR,
        material=body_material,
    )
    u.revolute_joint(
        stage,
        root.AppendChild(f"{name}_thigh_joint"),
        hip,
        thigh,
        anchor=thigh_pos,
        axis="Y",
        limit_deg=THIGH_LIMIT_DEG,
        max_force=HIP_EFFORT,
        max_velocity_deg=HIP_VELOCITY_DEG,
    )

    # calf: from the knee to just above the foot sphere
    calf_center = (0.0, 0.0, -CALF_LENGTH / 2)
    calf_capsule_length = CALF_LENGTH - FOOT_RADIUS - 2 * CALF_RADIUS
    calf = u.rigid_body(
        stage,
        root.AppendChild(f"{name}_calf"),
        knee_pos,
        CALF_MASS,
        u.capsule_inertia(CALF_MASS, CALF_RADIUS, calf_capsule_length, axis="Z"),
        center_of_mass=calf_center,
    )
    u.capsule(
        stage,
        calf.path.AppendChild("collision"),
        CALF_RADIUS,
        calf_capsule_length,
        axis="Z",
        offset=(0.0, 0.0, -(CALF_LENGTH - FOOT_RADIUS) / 2),
        color=_LINK_COLOR,
        material=body_material,
    )
    u.revolute_joint(
        stage,
        root.AppendChild(f"{name}_calf_joint"),
        thigh,
        calf,
        anchor=knee_pos,
        axis="Y",
        limit_deg=CALF_LIMIT_DEG,
        max_force=CALF_EFFORT,
        max_velocity_deg=CALF_VELOCITY_DEG,
    )

    # foot: its own body (welded) so contact sensing and rewards can select ".*_foot"
    foot_inertia = u.sphere_inertia(FOOT_MASS, FOOT_RADIUS)
    foot = u.rigid_body(stage, root.AppendChild(f"{name}_foot"), foot_pos, FOOT_MASS, foot_inertia)
    u.sphere(stage, foot.path.AppendChild("collision"), FOOT_RADIUS, color=_FOOT_COLOR, material=foot_material)
    u.fixed_joint(stage, root.AppendChild(f"{name}_foot_joint"), calf, foot)
