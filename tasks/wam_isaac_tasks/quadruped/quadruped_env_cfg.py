"""WAM-Quadruped-Flat: track a commanded planar base velocity with a 12-DoF quadruped on flat ground.

The MDP follows Isaac Lab's velocity-tracking tasks (joint-position actions around the standing pose, exponential
tracking rewards, feet air time, base-contact termination) on the project's own quadruped
(:mod:`wam_isaac_assets.robots.quadruped`). Randomized per env: trunk mass, foot friction and PD gains (startup);
action latency and strength, initial base pose/velocity and joint positions (reset); pushes (every 10-15 s);
observation noise on the policy group. The critic sees the exact state and the randomized parameters.
"""

from __future__ import annotations

import math

import isaaclab.sim as sim_utils
from isaaclab.assets import ArticulationCfg, AssetBaseCfg
from isaaclab.envs import ManagerBasedRLEnvCfg
from isaaclab.managers import EventTermCfg as EventTerm
from isaaclab.managers import ObservationGroupCfg as ObsGroup
from isaaclab.managers import ObservationTermCfg as ObsTerm
from isaaclab.managers import RewardTermCfg as RewTerm
from isaaclab.managers import SceneEntityCfg
from isaaclab.managers import TerminationTermCfg as DoneTerm
from isaaclab.scene import InteractiveSceneCfg
from isaaclab.sensors import ContactSensorCfg
from isaaclab.utils import configclass, replace
from isaaclab.utils.noise import UniformNoiseCfg as Unoise

from isaaclab_tasks.core.velocity import mdp

from wam_isaac.envs import observations as wam_obs
from wam_isaac.envs.actions import ActuationRandomizedActionCfg
from wam_isaac.envs.physics import physics_presets
from wam_isaac_assets.robots.quadruped import QUADRUPED_CFG

from . import observations as quadruped_obs
from .ground import CollisionPlaneCfg

FEET = SceneEntityCfg("contact_forces", body_names=".*_foot")
"""The four feet, as seen by the contact sensor."""
GROUND_FRICTION = 0.4
"""Friction coefficient of the ground [1]. MuJoCo takes the larger coefficient of a contact pair, so the ground is the
low end of the feet's randomization range and each foot's sampled value is the contact's friction."""
FOOT_FRICTION_RANGE = (0.4, 1.25)
"""Range of the feet's friction coefficient [1], sampled per env and foot at startup."""


@configclass
class QuadrupedSceneCfg(InteractiveSceneCfg):
    """One quadruped per env on a shared flat ground, with contact sensing on every link."""

    ground = AssetBaseCfg(
        prim_path="/World/ground",
        spawn=CollisionPlaneCfg(
            collision_props=[sim_utils.UsdPhysicsCollisionCfg(collision_enabled=True)],
            physics_material=sim_utils.RigidBodyMaterialCfg(
                static_friction=GROUND_FRICTION, dynamic_friction=GROUND_FRICTION, restitution=0.0
            ),
            visual_material=sim_utils.PreviewSurfaceCfg(diffuse_color=(0.3, 0.3, 0.32)),
        ),
    )
    """Infinite static plane at z = 0, friction ``GROUND_FRICTION``."""
    robot: ArticulationCfg = replace(QUADRUPED_CFG, prim_path="{ENV_REGEX_NS}/Robot")
    """The 12-DoF quadruped, spawned standing."""
    contact_forces = ContactSensorCfg(prim_path="{ENV_REGEX_NS}/Robot/.*", history_length=3, track_air_time=True)
    """Net contact force [N] on every link, 3 physics steps of history, feet air/contact times [s]."""
    light = AssetBaseCfg(prim_path="/World/light", spawn=sim_utils.DistantLightCfg(intensity=2000.0))


@configclass
class CommandsCfg:
    """Base velocity command in the heading frame, resampled every 10 s; 2% of envs are told to stand still."""

    base_velocity = mdp.UniformVelocityCommandCfg(
        asset_name="robot",
        resampling_time_range=(10.0, 10.0),
        rel_standing_envs=0.02,
        rel_heading_envs=1.0,
        heading_command=True,
        heading_control_stiffness=0.5,
        debug_vis=False,
        ranges=mdp.UniformVelocityCommandCfg.Ranges(
            lin_vel_x=(-1.0, 1.0), lin_vel_y=(-0.5, 0.5), ang_vel_z=(-1.0, 1.0), heading=(-math.pi, math.pi)
        ),
    )


@configclass
class ActionsCfg:
    """Joint position targets [rad] = default pose + 0.25 * action * strength, applied after the env's latency."""

    joint_pos = ActuationRandomizedActionCfg(
        term=mdp.JointPositionActionCfg(asset_name="robot", joint_names=[".*"], scale=0.25, use_default_offset=True),
        latency_steps=(0, 1),
        strength_scale=(0.9, 1.1),
    )


@configclass
class ObservationsCfg:
    """Policy: noisy proprioception and the command. Critic: exact state plus what DR sampled and the contacts."""

    @configclass
    class PolicyCfg(ObsGroup):
        base_lin_vel = ObsTerm(func=mdp.base_lin_vel, noise=Unoise(n_min=-0.1, n_max=0.1))
        base_ang_vel = ObsTerm(func=mdp.base_ang_vel, noise=Unoise(n_min=-0.2, n_max=0.2))
        projected_gravity = ObsTerm(func=mdp.projected_gravity, noise=Unoise(n_min=-0.05, n_max=0.05))
        velocity_commands = ObsTerm(func=mdp.generated_commands, params={"command_name": "base_velocity"})
        joint_pos = ObsTerm(func=mdp.joint_pos_rel, noise=Unoise(n_min=-0.01, n_max=0.01))
        joint_vel = ObsTerm(func=mdp.joint_vel_rel, noise=Unoise(n_min=-1.5, n_max=1.5))
        actions = ObsTerm(func=mdp.last_action)

        def __post_init__(self):
            self.enable_corruption = True
            self.concatenate_terms = True

    @configclass
    class CriticCfg(ObsGroup):
        base_lin_vel = ObsTerm(func=mdp.base_lin_vel)
        base_ang_vel = ObsTerm(func=mdp.base_ang_vel)
        projected_gravity = ObsTerm(func=mdp.projected_gravity)
        velocity_commands = ObsTerm(func=mdp.generated_commands, params={"command_name": "base_velocity"})
        joint_pos = ObsTerm(func=mdp.joint_pos_rel)
        joint_vel = ObsTerm(func=mdp.joint_vel_rel)
        actions = ObsTerm(func=mdp.last_action)
        base_height = ObsTerm(func=mdp.base_pos_z)
        base_mass = ObsTerm(func=wam_obs.body_mass, params={"asset_cfg": SceneEntityCfg("robot", body_names="base")})
        foot_friction = ObsTerm(
            func=wam_obs.shape_friction, params={"asset_cfg": SceneEntityCfg("robot", body_names=".*_foot")}
        )
        joint_stiffness = ObsTerm(func=wam_obs.joint_stiffness)
        joint_damping = ObsTerm(func=wam_obs.joint_damping)
        latency = ObsTerm(func=wam_obs.action_latency, params={"action_name": "joint_pos"})
        strength = ObsTerm(func=wam_obs.action_strength, params={"action_name": "joint_pos"})
        foot_contact_forces = ObsTerm(func=quadruped_obs.contact_forces, params={"sensor_cfg": FEET}, scale=0.01)

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    @configclass
    class WorldModelCfg(wam_obs.TermByTermGroupCfg):
        """The physical state a world model predicts (exact, env frame, stored term by term)."""

        base_pos = ObsTerm(func=mdp.root_pos_w)
        """Base position in the env frame [m], 3."""
        base_quat = ObsTerm(func=mdp.root_quat_w, params={"make_quat_unique": True})
        """Base orientation, xyzw with w >= 0 [1], 4."""
        base_lin_vel = ObsTerm(func=mdp.root_lin_vel_w)
        """Base linear velocity in the world frame [m/s], 3."""
        base_ang_vel = ObsTerm(func=mdp.root_ang_vel_w)
        """Base angular velocity in the world frame [rad/s], 3."""
        joint_pos = ObsTerm(func=mdp.joint_pos)
        """Joint angles [rad], 12."""
        joint_vel = ObsTerm(func=mdp.joint_vel)
        """Joint speeds [rad/s], 12."""

    @configclass
    class InstructionCfg(wam_obs.TermByTermGroupCfg):
        """What the robot is asked to do: the velocity command (a WAM conditions on it; it is not predicted)."""

        base_velocity = ObsTerm(func=mdp.generated_commands, params={"command_name": "base_velocity"})
        """(v_x [m/s], v_y [m/s], yaw rate [rad/s]) in the base's heading frame, 3."""

    policy: PolicyCfg = PolicyCfg()
    critic: CriticCfg = CriticCfg()
    world_model: WorldModelCfg = WorldModelCfg()
    instruction: InstructionCfg = InstructionCfg()
    previous_action: wam_obs.PreviousActionGroupCfg = wam_obs.PreviousActionGroupCfg()
    """The previous policy action [1], 12."""


@configclass
class EventCfg:
    """Domain randomization."""

    # startup: physical parameters, sampled once per env
    base_mass = EventTerm(
        func=mdp.randomize_rigid_body_mass,
        mode="startup",
        params={
            "asset_cfg": SceneEntityCfg("robot", body_names="base"),
            "mass_distribution_params": (-1.0, 2.0),
            "operation": "add",
        },
    )
    """Trunk mass: authored 6 kg plus -1..+2 kg (payload, battery), inertia scaled with it."""
    foot_friction = EventTerm(
        func=mdp.randomize_rigid_body_material,
        mode="startup",
        params={
            "asset_cfg": SceneEntityCfg("robot", body_names=".*_foot"),
            "static_friction_range": FOOT_FRICTION_RANGE,
            "dynamic_friction_range": FOOT_FRICTION_RANGE,
            "restitution_range": (0.0, 0.0),
            "num_buckets": 64,
        },
    )
    """Foot friction coefficient in ``FOOT_FRICTION_RANGE``, per foot (Newton uses one coefficient)."""
    actuator_gains = EventTerm(
        func=mdp.randomize_actuator_gains,
        mode="startup",
        params={
            "asset_cfg": SceneEntityCfg("robot", joint_names=".*"),
            "stiffness_distribution_params": (0.8, 1.2),
            "damping_distribution_params": (0.8, 1.2),
            "operation": "scale",
        },
    )
    """PD stiffness and damping of every joint scaled by 0.8..1.2 (motor and driver spread)."""
    # reset: initial state
    reset_base = EventTerm(
        func=mdp.reset_root_state_uniform,
        mode="reset",
        params={
            "pose_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5), "yaw": (-math.pi, math.pi)},
            "velocity_range": {
                "x": (-0.5, 0.5),
                "y": (-0.5, 0.5),
                "z": (-0.5, 0.5),
                "roll": (-0.5, 0.5),
                "pitch": (-0.5, 0.5),
                "yaw": (-0.5, 0.5),
            },
        },
    )
    """Base position +-0.5 m and any heading around the env origin; base velocity +-0.5 m/s and +-0.5 rad/s."""
    reset_joints = EventTerm(
        func=mdp.reset_joints_by_scale,
        mode="reset",
        params={"position_range": (0.8, 1.2), "velocity_range": (0.0, 0.0)},
    )
    """Joint positions: the stance scaled by 0.8..1.2 (clamped to the soft limits), at rest."""
    # interval: external pushes, a random base velocity change of up to 0.5 m/s every 10-15 s
    push_robot = EventTerm(
        func=mdp.push_by_setting_velocity,
        mode="interval",
        interval_range_s=(10.0, 15.0),
        params={"velocity_range": {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}},
    )
    """Adds a uniform -0.5..0.5 m/s to the base's x and y velocity, every 10-15 s (per env)."""


@configclass
class RewardsCfg:
    """Track the command; penalize falling, vertical bouncing, tilting, effort, jerky actions and knee/thigh
    contacts."""

    # -- task
    track_lin_vel_xy_exp = RewTerm(
        func=mdp.track_lin_vel_xy_exp, weight=1.5, params={"command_name": "base_velocity", "std": math.sqrt(0.25)}
    )
    track_ang_vel_z_exp = RewTerm(
        func=mdp.track_ang_vel_z_exp, weight=0.75, params={"command_name": "base_velocity", "std": math.sqrt(0.25)}
    )
    # -- penalties
    # falling costs 4 (200 * dt): without it, early policies whose penalties outweigh the tracking reward learn to
    # end episodes on the trunk (measured: base-contact terminations 0% -> 92% in 33 iterations, 256 envs)
    termination = RewTerm(func=mdp.is_terminated, weight=-200.0)
    lin_vel_z_l2 = RewTerm(func=mdp.lin_vel_z_l2, weight=-2.0)
    ang_vel_xy_l2 = RewTerm(func=mdp.ang_vel_xy_l2, weight=-0.05)
    flat_orientation_l2 = RewTerm(func=mdp.flat_orientation_l2, weight=-2.5)
    dof_torques_l2 = RewTerm(func=mdp.joint_torques_l2, weight=-2.0e-4)
    dof_acc_l2 = RewTerm(func=mdp.joint_acc_l2, weight=-2.5e-7)
    action_rate_l2 = RewTerm(func=mdp.action_rate_l2, weight=-0.01)
    feet_air_time = RewTerm(
        func=mdp.feet_air_time,
        weight=0.25,
        params={"sensor_cfg": FEET, "command_name": "base_velocity", "threshold": 0.5},
    )
    undesired_contacts = RewTerm(
        func=mdp.undesired_contacts,
        weight=-1.0,
        params={"sensor_cfg": SceneEntityCfg("contact_forces", body_names=[".*_thigh", ".*_calf"]), "threshold": 1.0},
    )


@configclass
class TerminationsCfg:
    """Time out; the trunk touches the ground."""

    time_out = DoneTerm(func=mdp.time_out, time_out=True)
    base_contact = DoneTerm(
        func=mdp.illegal_contact,
        params={"sensor_cfg": SceneEntityCfg("contact_forces", body_names="base"), "threshold": 1.0},
    )


@configclass
class QuadrupedFlatEnvCfg(ManagerBasedRLEnvCfg):
    """WAM-Quadruped-Flat: 20 s episodes at 50 Hz control (200 Hz physics)."""

    scene: QuadrupedSceneCfg = QuadrupedSceneCfg(num_envs=1024, env_spacing=2.5, clone_in_fabric=True)
    observations: ObservationsCfg = ObservationsCfg()
    actions: ActionsCfg = ActionsCfg()
    commands: CommandsCfg = CommandsCfg()
    rewards: RewardsCfg = RewardsCfg()
    terminations: TerminationsCfg = TerminationsCfg()
    events: EventCfg = EventCfg()

    def __post_init__(self):
        self.decimation = 4
        self.episode_length_s = 20.0
        self.sim.dt = 0.005
        self.sim.render_interval = self.decimation
        # contacts: 4 feet standing, up to ~24 when lying down (box 4, capsules 2 each, spheres 1);
        # constraint rows: 4 per contact (pyramidal cone, condim 3) + 12 joint limits.
        # solimp 0.98-0.99 (Newton's default 0.9-0.95): a standing robot's feet sink 0.5 mm (median; p95 0.7 mm, max
        # 1.5 mm, 16 envs x 95 steps) instead of 1.9 mm (p95 3.4 mm) and never leave the ground; a flat 0.99 sank less
        # but let a standing foot lose contact for a step (chatter)
        self.sim.physics = physics_presets(njmax=160, nconmax=36, contact_solimp=(0.98, 0.99, 0.001, 0.5, 2.0))
        # the contact sensor ticks every physics step so air/contact times are exact
        self.scene.contact_forces.update_period = self.sim.dt
