"""Articulation configuration of the project's 12-DoF quadruped (``assets/usd/quadruped.usda``)."""

from __future__ import annotations

import isaaclab.sim as sim_utils
from isaaclab.actuators import ImplicitActuatorCfg
from isaaclab.assets import ArticulationCfg
from isaaclab_newton.sim.schemas import NewtonArticulationCfg

from .. import usd_path

STANDING_HEIGHT = 0.35
"""Trunk height [m] above flat ground of the default stance's kinematics (rigid joints). Under its own weight the PD
legs settle about 3 cm lower (measured: 0.32 m)."""

QUADRUPED_CFG = ArticulationCfg(
    spawn=sim_utils.UsdFileCfg(
        usd_path=usd_path("quadruped"),
        activate_contact_sensors=True,
        rigid_props=[sim_utils.UsdPhysicsRigidBodyCfg(rigid_body_enabled=True)],
        articulation_props=[NewtonArticulationCfg(self_collision_enabled=False)],
    ),
    init_state=ArticulationCfg.InitialStateCfg(
        # spawned 2 cm above the stance height: the robot settles onto its feet
        pos=(0.0, 0.0, STANDING_HEIGHT + 0.02),
        joint_pos={
            ".*L_hip_joint": 0.05,
            ".*R_hip_joint": -0.05,
            # front feet under the hips, rear feet 7 cm behind theirs: with knees folding backward, the PD legs'
            # sag moves the feet forward, and a stance with the feet centered under the trunk would load the rear
            # legs until they buckle (measured at stiffness 25: rear knees on the ground within 1 s)
            "F[LR]_thigh_joint": 0.6,
            "R[LR]_thigh_joint": 0.8,
            ".*_calf_joint": -1.2,
        },
        joint_vel={".*": 0.0},
    ),
    soft_joint_pos_limit_factor=0.9,
    actuators={
        # position-controlled legs: the PD law runs inside the solver (implicit), as a motor driver would
        "legs": ImplicitActuatorCfg(
            joint_names_expr=[".*_hip_joint", ".*_thigh_joint", ".*_calf_joint"],
            joint_effort_limit={".*_hip_joint": 23.7, ".*_thigh_joint": 23.7, ".*_calf_joint": 35.55},
            joint_velocity_limit={".*_hip_joint": 30.1, ".*_thigh_joint": 30.1, ".*_calf_joint": 20.06},
            stiffness=25.0,
            damping=0.5,
            armature=0.01,
        ),
    },
)
"""The quadruped: 12 position-controlled joints (PD gains 25 N m/rad, 0.5 N m s/rad; torque limits 23.7 N m at hip and
thigh, 35.55 N m at the knee), spawned standing."""
