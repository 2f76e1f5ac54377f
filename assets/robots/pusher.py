"""The table-top pusher scene assets: the SCARA arm (``assets/usd/pusher.usda``), its table and the cube.

The table is an Isaac Lab procedural cuboid (no USD file); the cube is authored by
:mod:`wam_isaac_assets.builders.cube`; their dimensions come from the arm's builder
(:mod:`wam_isaac_assets.builders.pusher`) so the three agree on one geometry. The table is a kinematic rigid body,
so that its friction can be randomized per env like the cube's.
"""

from __future__ import annotations

import math

import isaaclab.sim as sim_utils
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg, RigidObjectCfg
from isaaclab_newton.sim.schemas import NewtonArticulationCfg

from .. import usd_path
from ..builders import pusher as geometry

ARM_JOINTS = ("shoulder", "elbow", "wrist")
"""Actuated joints of the arm, base to tip."""

READY_JOINT_POS = {"shoulder": -0.98, "elbow": 2.46, "wrist": -1.48}
"""Default joint positions [rad]: elbow folded, the tip at about (0.25, 0) m, behind the cube's start region and
pointing +x (inverse kinematics of the builder's link lengths)."""

PUSHER_CFG = ArticulationCfg(
    spawn=sim_utils.UsdFileCfg(
        usd_path=usd_path("pusher"),
        rigid_props=[sim_utils.UsdPhysicsRigidBodyCfg(rigid_body_enabled=True)],
        articulation_props=[NewtonArticulationCfg(self_collision_enabled=False)],
    ),
    init_state=ArticulationCfg.InitialStateCfg(pos=(0.0, 0.0, 0.0), joint_pos=READY_JOINT_POS),
    actuators={
        # geared position servos: the armature is the motor's reflected rotor inertia [kg m^2]; with the links'
        # inertia (extended arm: 0.35 kg m^2 about the shoulder, 0.03 about the elbow, 0.002 about the wrist) the
        # gains give damping ratios of about 0.8 (shoulder) to 2 (elbow, wrist), and the damping caps the speed a
        # saturated joint reaches (effort / damping) at about 4 rad/s, a SCARA's usual joint speed
        "shoulder": ImplicitActuatorCfg(
            joint_names_expr=["shoulder"],
            joint_effort_limit=geometry.SHOULDER_EFFORT,
            joint_velocity_limit=math.radians(geometry.JOINT_VELOCITY_LIMIT_DEG),
            stiffness=60.0,
            damping=8.0,
            armature=0.05,
        ),
        "elbow": ImplicitActuatorCfg(
            joint_names_expr=["elbow"],
            joint_effort_limit=geometry.ELBOW_EFFORT,
            joint_velocity_limit=math.radians(geometry.JOINT_VELOCITY_LIMIT_DEG),
            stiffness=20.0,
            damping=4.0,
            armature=0.02,
        ),
        "wrist": ImplicitActuatorCfg(
            joint_names_expr=["wrist"],
            joint_effort_limit=geometry.WRIST_EFFORT,
            joint_velocity_limit=math.radians(geometry.JOINT_VELOCITY_LIMIT_DEG),
            stiffness=5.0,
            damping=1.0,
            armature=0.01,
        ),
    },
)
"""The SCARA pusher arm, joint-position controlled, fixed to the env origin."""

TABLE_CFG = RigidObjectCfg(
    spawn=sim_utils.CuboidCfg(
        size=geometry.TABLE_SIZE,
        rigid_props=sim_utils.UsdPhysicsRigidBodyCfg(kinematic_enabled=True),
        collision_props=sim_utils.UsdPhysicsCollisionCfg(),
        physics_material=sim_utils.RigidBodyMaterialCfg(static_friction=0.5, dynamic_friction=0.5),
        visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=(0.45, 0.3, 0.2)),
    ),
    init_state=RigidObjectCfg.InitialStateCfg(
        pos=(geometry.TABLE_NEAR_X + geometry.TABLE_SIZE[0] / 2, 0.0, geometry.TABLE_TOP_Z - geometry.TABLE_SIZE[2] / 2)
    ),
)
"""The table top: a kinematic slab whose top face is at ``TABLE_TOP_Z`` [m]."""

CUBE_REST_DEPTH = 0.001
"""Depth [m] by which the cube's corner spheres start in the table: where the contact holds them at rest (0.87-1.06 mm
for the randomized 0.1-0.4 kg under WAM-Push-Cube's contact settings, whose impedance is soft at the surface), so
that a reset cube neither drops nor creeps up."""


CUBE_CFG = RigidObjectCfg(
    spawn=sim_utils.UsdFileCfg(usd_path=usd_path("cube")),
    init_state=RigidObjectCfg.InitialStateCfg(
        pos=(0.375, 0.0, geometry.TABLE_TOP_Z + geometry.CUBE_SIZE / 2 - CUBE_REST_DEPTH)
    ),
)
"""The pushed cube (0.05 m, 0.2 kg; ``assets/usd/cube.usda``: a core box for the tip, corner spheres on the table),
resting on the table in front of the arm (reset to this height)."""
