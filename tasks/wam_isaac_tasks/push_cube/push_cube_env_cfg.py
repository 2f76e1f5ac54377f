"""WAM-Push-Cube: a SCARA arm pushes a cube across a table to a goal sampled at every reset.

The arm's three yaw joints take position targets; its spherical tip rides at the cube's mid-height. An episode
succeeds (and ends) when the cube's center is within 2 cm of the goal horizontally; it fails when the cube falls
off the table. Randomized per env: cube mass, arm link masses, cube and table friction, servo gains (startup);
actuator strength and action latency, arm pose and cube pose (reset); observation noise on the policy group.
"""

from __future__ import annotations

import math

import isaaclab.envs.mdp as mdp
import isaaclab.sim as sim_utils
from isaaclab.assets import ArticulationCfg, AssetBaseCfg, RigidObjectCfg
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

from wam_isaac.envs import observations as wam_obs
from wam_isaac.envs.actions import ActuationRandomizedActionCfg
from wam_isaac.envs.materials import randomize_asset_friction
from wam_isaac.envs.physics import physics_presets
from wam_isaac_assets.builders import pusher as geometry
from wam_isaac_assets.robots.pusher import ARM_JOINTS, CUBE_CFG, PUSHER_CFG, TABLE_CFG

from . import mdp as push_mdp

ARM = SceneEntityCfg("robot", joint_names=list(ARM_JOINTS))
"""The arm's three actuated joints."""
LINKS = SceneEntityCfg("robot", body_names=["upper_arm", "forearm", "pusher"])
"""The arm's moving links."""
CUBE = SceneEntityCfg("cube")
"""The pushed cube."""
TABLE = SceneEntityCfg("table")
"""The table top."""
SUCCESS_DISTANCE = 0.02
"""Horizontal cube-to-goal distance [m] under which the push has succeeded."""
PUSH_STANDOFF = 0.5 * geometry.CUBE_SIZE + geometry.TIP_RADIUS
"""Tip-center to cube-center distance [m] when the tip touches the middle of a face."""
CONTACT_SUBSTEPS = 4
"""Solver substeps per 20 ms physics step: the solver steps 5 ms (contacts need it; see ``__post_init__``)."""
CONTACT_SOLREF = (0.04, 1.0)
"""MuJoCo ``solref`` of every contact: time constant [s], damping ratio (critically damped; the damping ``b = 2 /
(d_max * 0.04 s)`` = 50 /s also scales the lift MuJoCo's soft friction gives a sliding contact)."""
CONTACT_SOLIMP = (0.1, 0.99, 0.002, 0.5, 2.0)
"""MuJoCo ``solimp`` of every contact: impedance 0.1 at the surface rising to 0.99 at 2 mm of penetration (a cube at
rest sinks about 1 mm). Near the surface the constraint lets most of gravity through, so the friction's lift cannot
pop a sliding corner off the table (d 0.99 there: tilt rate while sliding p95 2.5 rad/s; d 0.5: 1.7)."""
FRICTION_RANGE = (0.3, 0.6)
"""Friction coefficient range of the cube and of the table (MuJoCo uses the larger of the two): plastic or wood on a
wooden or laminate table top. Beyond about 1, a cube pushed at mid-height tips over instead of sliding."""


@configclass
class PushCubeSceneCfg(InteractiveSceneCfg):
    """One arm, table and cube per env; the arm's base is at the env origin."""

    robot: ArticulationCfg = replace(PUSHER_CFG, prim_path="{ENV_REGEX_NS}/Robot")
    table: RigidObjectCfg = replace(TABLE_CFG, prim_path="{ENV_REGEX_NS}/Table")
    cube: RigidObjectCfg = replace(CUBE_CFG, prim_path="{ENV_REGEX_NS}/Cube")
    contact_forces = ContactSensorCfg(prim_path="{ENV_REGEX_NS}/(Robot/pusher|Cube)")
    """Net contact force [N] on the pusher link (the tip pushing the cube) and on the cube (table, tip), in that
    order: the contact labels of the push data."""
    light = AssetBaseCfg(prim_path="/World/light", spawn=sim_utils.DistantLightCfg(intensity=2000.0))


@configclass
class CommandsCfg:
    """Where the cube must go."""

    goal = push_mdp.GoalOnTableCommandCfg(object_name="cube", x_range=(0.46, 0.56), y_range=(-0.15, 0.15))
    """Goal (x, y) [m, env frame], drawn at each reset beyond the cube's start region (x 0.35-0.40 m) and within
    the arm's reach (0.61 m)."""


@configclass
class ActionsCfg:
    """Joint position targets [rad] = ready pose + 1.0 * action * strength, applied after the env's latency."""

    arm = ActuationRandomizedActionCfg(
        term=mdp.JointPositionActionCfg(
            asset_name="robot", joint_names=list(ARM_JOINTS), scale=1.0, use_default_offset=True
        ),
        latency_steps=(0, 1),
        strength_scale=(0.8, 1.2),
    )
    """Shoulder, elbow, wrist targets; latency 0-1 control steps and strength 0.8-1.2 drawn per env at reset."""


@configclass
class ObservationsCfg:
    """Policy: noisy arm state and cube/goal geometry. Critic: the same, exact, plus the randomized parameters."""

    @configclass
    class PolicyCfg(ObsGroup):
        """What the deployed policy sees (with sensor noise)."""

        joint_pos = ObsTerm(func=mdp.joint_pos_rel, params={"asset_cfg": ARM}, noise=Unoise(n_min=-0.01, n_max=0.01))
        """Arm joint angles relative to the ready pose [rad], 3."""
        joint_vel = ObsTerm(
            func=mdp.joint_vel_rel, params={"asset_cfg": ARM}, noise=Unoise(n_min=-0.05, n_max=0.05), clip=(-20.0, 20.0)
        )
        """Arm joint speeds [rad/s], 3, clipped at 20."""
        tip_pos = ObsTerm(func=push_mdp.tip_pos, noise=Unoise(n_min=-0.002, n_max=0.002))
        """Tip (x, y) [m, env frame], 2."""
        cube_rel_tip = ObsTerm(func=push_mdp.cube_pos_rel_tip, noise=Unoise(n_min=-0.005, n_max=0.005))
        """Cube minus tip (x, y) [m], 2."""
        cube_yaw = ObsTerm(func=push_mdp.cube_yaw_features, noise=Unoise(n_min=-0.05, n_max=0.05))
        """(sin, cos) of 4 x cube yaw [1], 2."""
        goal_rel_cube = ObsTerm(func=push_mdp.goal_pos_rel_cube, noise=Unoise(n_min=-0.005, n_max=0.005))
        """Goal minus cube (x, y) [m], 2."""
        actions = ObsTerm(func=mdp.last_action)
        """Previous policy action [1], 3."""

        def __post_init__(self):
            self.enable_corruption = True
            self.concatenate_terms = True

    @configclass
    class CriticCfg(ObsGroup):
        """Exact state plus privileged information: cube velocity and every randomized physical parameter."""

        joint_pos = ObsTerm(func=mdp.joint_pos_rel, params={"asset_cfg": ARM})
        joint_vel = ObsTerm(func=mdp.joint_vel_rel, params={"asset_cfg": ARM}, clip=(-20.0, 20.0))
        tip_pos = ObsTerm(func=push_mdp.tip_pos)
        cube_rel_tip = ObsTerm(func=push_mdp.cube_pos_rel_tip)
        cube_yaw = ObsTerm(func=push_mdp.cube_yaw_features)
        goal_rel_cube = ObsTerm(func=push_mdp.goal_pos_rel_cube)
        actions = ObsTerm(func=mdp.last_action)
        cube_vel = ObsTerm(func=mdp.root_lin_vel_w, params={"asset_cfg": CUBE}, clip=(-10.0, 10.0))
        cube_mass = ObsTerm(func=wam_obs.body_mass, params={"asset_cfg": CUBE})
        link_mass = ObsTerm(func=wam_obs.body_mass, params={"asset_cfg": LINKS})
        cube_friction = ObsTerm(func=wam_obs.shape_friction, params={"asset_cfg": CUBE})
        table_friction = ObsTerm(func=wam_obs.shape_friction, params={"asset_cfg": TABLE})
        stiffness = ObsTerm(func=wam_obs.joint_stiffness, params={"asset_cfg": ARM}, scale=0.05)
        damping = ObsTerm(func=wam_obs.joint_damping, params={"asset_cfg": ARM}, scale=0.25)
        latency = ObsTerm(func=wam_obs.action_latency, params={"action_name": "arm"})
        strength = ObsTerm(func=wam_obs.action_strength, params={"action_name": "arm"})

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    @configclass
    class WorldModelCfg(wam_obs.TermByTermGroupCfg):
        """The physical state a world model predicts (exact, env frame, stored term by term)."""

        joint_pos = ObsTerm(func=mdp.joint_pos, params={"asset_cfg": ARM})
        """Arm joint angles [rad], 3."""
        joint_vel = ObsTerm(func=mdp.joint_vel, params={"asset_cfg": ARM})
        """Arm joint speeds [rad/s], 3."""
        cube_pos = ObsTerm(func=mdp.root_pos_w, params={"asset_cfg": CUBE})
        """Cube center in the env frame [m], 3."""
        cube_quat = ObsTerm(func=mdp.root_quat_w, params={"asset_cfg": CUBE, "make_quat_unique": True})
        """Cube orientation, xyzw with w >= 0 [1], 4."""
        cube_lin_vel = ObsTerm(func=mdp.root_lin_vel_w, params={"asset_cfg": CUBE})
        """Cube linear velocity in the world frame [m/s], 3."""
        cube_ang_vel = ObsTerm(func=mdp.root_ang_vel_w, params={"asset_cfg": CUBE})
        """Cube angular velocity in the world frame [rad/s], 3."""

    @configclass
    class InstructionCfg(wam_obs.TermByTermGroupCfg):
        """What the agent is asked to do: the goal (a WAM conditions on it; it is not predicted)."""

        goal = ObsTerm(func=mdp.generated_commands, params={"command_name": "goal"})
        """Goal (x, y) in the env frame [m], 2."""

    policy: PolicyCfg = PolicyCfg()
    critic: CriticCfg = CriticCfg()
    world_model: WorldModelCfg = WorldModelCfg()
    instruction: InstructionCfg = InstructionCfg()
    previous_action: wam_obs.PreviousActionGroupCfg = wam_obs.PreviousActionGroupCfg()
    """The previous policy action [1], 3."""


@configclass
class EventCfg:
    """Domain randomization."""

    # startup: physical parameters, sampled once per env
    cube_mass = EventTerm(
        func=mdp.randomize_rigid_body_mass,
        mode="startup",
        params={"asset_cfg": CUBE, "mass_distribution_params": (0.5, 2.0), "operation": "scale"},
    )
    """Cube mass x U(0.5, 2) (0.1-0.4 kg), once per env."""
    link_mass = EventTerm(
        func=mdp.randomize_rigid_body_mass,
        mode="startup",
        params={"asset_cfg": LINKS, "mass_distribution_params": (0.8, 1.2), "operation": "scale"},
    )
    """Arm link masses x U(0.8, 1.2), once per env."""
    cube_friction = EventTerm(
        func=randomize_asset_friction,
        mode="startup",
        params={
            "asset_cfg": CUBE,
            "static_friction_range": FRICTION_RANGE,
            "dynamic_friction_range": FRICTION_RANGE,
            "restitution_range": (0.0, 0.0),
            "num_buckets": 64,
        },
    )
    """Cube friction coefficient U(0.3, 0.6), once per env, the same for all its collision shapes."""
    table_friction = EventTerm(
        func=mdp.randomize_rigid_body_material,
        mode="startup",
        params={
            "asset_cfg": TABLE,
            "static_friction_range": FRICTION_RANGE,
            "dynamic_friction_range": FRICTION_RANGE,
            "restitution_range": (0.0, 0.0),
            "num_buckets": 64,
        },
    )
    """Table friction coefficient U(0.3, 0.6), once per env (the contact uses the larger of the two)."""
    servo_gains = EventTerm(
        func=mdp.randomize_actuator_gains,
        mode="startup",
        params={
            "asset_cfg": ARM,
            "stiffness_distribution_params": (0.8, 1.2),
            "damping_distribution_params": (0.8, 1.2),
            "operation": "scale",
        },
    )
    """Servo stiffness and damping x U(0.8, 1.2), once per env."""
    # reset: initial state
    reset_arm = EventTerm(
        func=mdp.reset_joints_by_offset,
        mode="reset",
        params={"asset_cfg": ARM, "position_range": (-0.15, 0.15), "velocity_range": (0.0, 0.0)},
    )
    """Arm joints at the ready pose + U(-0.15, 0.15) rad, at rest, each reset."""
    reset_cube = EventTerm(
        func=mdp.reset_root_state_uniform,
        mode="reset",
        params={
            "asset_cfg": CUBE,
            "pose_range": {"x": (-0.025, 0.025), "y": (-0.1, 0.1), "yaw": (-math.pi, math.pi)},
            "velocity_range": {},
        },
    )
    """Cube at (0.375, 0) + U(+-0.025, +-0.1) m, any yaw, at rest, each reset: at least 8 mm from the tip wherever
    ``reset_arm`` puts it (tip x <= 0.287 m; a cube from x 0.32 m, as before, could be reset 22 mm into the tip)."""


@configclass
class RewardsCfg:
    """Reach the push point behind the cube, move the cube toward the goal, finish; move smoothly."""

    reach = RewTerm(func=push_mdp.tip_push_point_kernel, weight=1.0, params={"std": 0.1, "standoff": PUSH_STANDOFF})
    """Tip near the push point behind the cube: up to 1 per second."""
    progress = RewTerm(func=push_mdp.cube_progress, weight=20.0, params={"max_speed": 0.5})
    """Cube approaching the goal: 20 per meter gained (0.2 for a 1 cm step), lost again if it recedes."""
    near_goal = RewTerm(func=push_mdp.cube_goal_distance_kernel, weight=1.0, params={"std": 0.05})
    """Cube close to the goal (5 cm scale): up to 1 per second; the fine-positioning gradient."""
    success = RewTerm(func=push_mdp.success_bonus, weight=10.0, params={"term_name": "success"})
    """One-off bonus of 10 when the push succeeds (it also ends the episode)."""
    cube_lost = RewTerm(func=mdp.is_terminated_term, weight=-50.0, params={"term_keys": ["cube_off_table"]})
    """Cube knocked off the table: -50 x step_dt = -2 once."""
    action_rate = RewTerm(func=mdp.action_rate_l2, weight=-0.01)
    """Jerky targets: -0.01 per (rad of target change)^2 per second."""
    joint_vel = RewTerm(func=push_mdp.joint_speed_l2, weight=-0.001, params={"asset_cfg": ARM, "max_speed": 20.0})
    """Fast joints: -0.001 per (rad/s)^2 per second, speeds clipped at 20 rad/s."""
    success_rate = RewTerm(func=push_mdp.push_success_rate, weight=0.0, params={"term_name": "success"})
    """No reward: logs ``Metrics/success_rate`` at every reset."""


@configclass
class TerminationsCfg:
    """Time out; cube at the goal (success); cube off the table (failure); diverged physics (safety net)."""

    time_out = DoneTerm(func=mdp.time_out, time_out=True)
    """Episode length reached (truncation, not failure)."""
    success = DoneTerm(func=push_mdp.cube_at_goal, params={"threshold": SUCCESS_DISTANCE})
    """Cube within 2 cm of the goal horizontally."""
    cube_off_table = DoneTerm(func=push_mdp.cube_off_table, params={"min_height": geometry.TABLE_TOP_Z - 0.05})
    """Cube center 5 cm below the table top: it fell off."""
    physics_diverged = DoneTerm(
        func=push_mdp.physics_diverged, params={"robot_cfg": ARM, "max_joint_speed": 50.0, "max_cube_speed": 10.0}
    )
    """A joint above 50 rad/s, the cube above 10 m/s, or a non-finite state: reset, never trained on."""


@configclass
class PushCubeEnvCfg(ManagerBasedRLEnvCfg):
    """WAM-Push-Cube: 6 s episodes at 25 Hz control (50 Hz physics, 200 Hz solver)."""

    scene: PushCubeSceneCfg = PushCubeSceneCfg(num_envs=512, env_spacing=2.0, clone_in_fabric=True)
    observations: ObservationsCfg = ObservationsCfg()
    actions: ActionsCfg = ActionsCfg()
    commands: CommandsCfg = CommandsCfg()
    rewards: RewardsCfg = RewardsCfg()
    terminations: TerminationsCfg = TerminationsCfg()
    events: EventCfg = EventCfg()

    def __post_init__(self):
        self.decimation = 2
        self.episode_length_s = 6.0
        self.sim.dt = 1 / 50
        self.sim.render_interval = self.decimation
        # contacts: cube-table (4 corner spheres on a face, 2 on an edge), tip-cube (core box, up to 2 corner spheres
        # near an edge), tip-table (detected, never active); 3 joint limits; pyramidal rows 4/contact. A pushed cube
        # slides flat (tilt rate, wobble, penetration: evaluation/contact_quality.py) with: sphere-box contacts (the
        # cube's corner spheres; physics.py: both box-box colliders fail a cube on a table), a 5 ms solver step (4
        # substeps: an unloaded corner free-falls for a whole solver step), and an impedance that is soft at the
        # surface and stiff below it (solimp d 0.1 -> 0.99 over 2 mm) with critically damped contacts (solref 0.04 s,
        # damping ratio 1). Why: MuJoCo's soft friction pushes a sliding contact out of the table (its reference
        # acceleration has a b * mu * v_slide term, pyramidal and elliptic cones alike), so a cube sliding on a stiff
        # contact (d 0.99) hops and lands on two corners, at every solver step; a low impedance at the surface lets
        # gravity win there, so the corners stay in contact (tilt rate while sliding median 0.85 -> 0.21, p95 2.5 ->
        # 0.7 rad/s; see the README's Contact physics)
        self.sim.physics = physics_presets(
            njmax=64,
            nconmax=16,
            num_substeps=CONTACT_SUBSTEPS,
            contact_solref=CONTACT_SOLREF,
            contact_solimp=CONTACT_SOLIMP,
        )
