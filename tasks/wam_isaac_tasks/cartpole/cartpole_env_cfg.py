"""WAM-Cartpole: balance a pole on a force-driven cart, with domain randomization.

Randomized per env: cart and pole masses (startup), rail damping and slider friction (startup), actuator strength
and action latency (reset), initial cart and pole state (reset), and observation noise on the policy group.
"""

from __future__ import annotations

import math

import isaaclab.envs.mdp as mdp
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
from isaaclab.utils import configclass, replace
from isaaclab.utils.noise import UniformNoiseCfg as Unoise

from wam_isaac.envs import observations as wam_obs
from wam_isaac.envs.actions import ActuationRandomizedActionCfg
from wam_isaac.envs.physics import physics_presets
from wam_isaac_assets.robots.cartpole import CARTPOLE_CFG

CART = SceneEntityCfg("robot", joint_names=["slider_to_cart"])
POLE = SceneEntityCfg("robot", joint_names=["cart_to_pole"])
MAX_CART_POS = 3.0
"""Cart travel [m] beyond which the episode terminates."""
MAX_POLE_ANGLE = 0.5 * math.pi
"""Pole angle [rad] from upright beyond which the episode terminates."""


@configclass
class CartpoleSceneCfg(InteractiveSceneCfg):
    """One cart-pole per env; no ground contact is needed."""

    robot: ArticulationCfg = replace(CARTPOLE_CFG, prim_path="{ENV_REGEX_NS}/Robot")
    light = AssetBaseCfg(prim_path="/World/light", spawn=sim_utils.DistantLightCfg(intensity=2000.0))


@configclass
class ActionsCfg:
    """Cart force [N] = 100 * action * strength, applied after the env's latency."""

    cart_force = ActuationRandomizedActionCfg(
        term=mdp.JointEffortActionCfg(asset_name="robot", joint_names=["slider_to_cart"], scale=100.0),
        latency_steps=(0, 1),
        strength_scale=(0.8, 1.2),
    )


@configclass
class ObservationsCfg:
    """Policy: noisy joint state. Critic: exact joint state and the env's randomized parameters."""

    @configclass
    class PolicyCfg(ObsGroup):
        joint_pos = ObsTerm(func=mdp.joint_pos_rel, noise=Unoise(n_min=-0.01, n_max=0.01))
        joint_vel = ObsTerm(func=mdp.joint_vel_rel, noise=Unoise(n_min=-0.05, n_max=0.05))

        def __post_init__(self):
            self.enable_corruption = True
            self.concatenate_terms = True

    @configclass
    class CriticCfg(ObsGroup):
        joint_pos = ObsTerm(func=mdp.joint_pos_rel)
        joint_vel = ObsTerm(func=mdp.joint_vel_rel)
        body_mass = ObsTerm(
            func=wam_obs.body_mass, params={"asset_cfg": SceneEntityCfg("robot", body_names=["cart", "pole"])}
        )
        cart_damping = ObsTerm(func=wam_obs.joint_damping, params={"asset_cfg": CART})
        latency = ObsTerm(func=wam_obs.action_latency, params={"action_name": "cart_force"})
        strength = ObsTerm(func=wam_obs.action_strength, params={"action_name": "cart_force"})

        def __post_init__(self):
            self.enable_corruption = False
            self.concatenate_terms = True

    @configclass
    class WorldModelCfg(wam_obs.TermByTermGroupCfg):
        """The physical state a world model predicts (exact, stored term by term)."""

        joint_pos = ObsTerm(func=mdp.joint_pos)
        """Cart position [m] and pole angle [rad], 2."""
        joint_vel = ObsTerm(func=mdp.joint_vel)
        """Cart speed [m/s] and pole rate [rad/s], 2."""

    policy: PolicyCfg = PolicyCfg()
    critic: CriticCfg = CriticCfg()
    world_model: WorldModelCfg = WorldModelCfg()
    previous_action: wam_obs.PreviousActionGroupCfg = wam_obs.PreviousActionGroupCfg()
    """The previous policy action [1], 1."""


@configclass
class EventCfg:
    """Domain randomization."""

    # startup: physical parameters, sampled once per env
    cart_pole_mass = EventTerm(
        func=mdp.randomize_rigid_body_mass,
        mode="startup",
        params={
            "asset_cfg": SceneEntityCfg("robot", body_names=["cart", "pole"]),
            "mass_distribution_params": (0.7, 1.3),
            "operation": "scale",
        },
    )
    rail_damping = EventTerm(
        func=mdp.randomize_actuator_gains,
        mode="startup",
        params={"asset_cfg": CART, "damping_distribution_params": (0.5, 1.5), "operation": "scale"},
    )
    slider_friction = EventTerm(
        func=mdp.randomize_joint_parameters,
        mode="startup",
        params={"asset_cfg": CART, "friction_distribution_params": (0.0, 0.05), "operation": "abs"},
    )
    # reset: initial state
    reset_cart = EventTerm(
        func=mdp.reset_joints_by_offset,
        mode="reset",
        params={"asset_cfg": CART, "position_range": (-1.0, 1.0), "velocity_range": (-0.5, 0.5)},
    )
    reset_pole = EventTerm(
        func=mdp.reset_joints_by_offset,
        mode="reset",
        params={
            "asset_cfg": POLE,
            "position_range": (-0.25 * math.pi, 0.25 * math.pi),
            "velocity_range": (-0.25 * math.pi, 0.25 * math.pi),
        },
    )


@configclass
class RewardsCfg:
    """Stay alive, keep the pole upright and the cart centered, move gently."""

    alive = RewTerm(func=mdp.is_alive, weight=1.0)
    terminating = RewTerm(func=mdp.is_terminated, weight=-2.0)
    pole_pos = RewTerm(func=mdp.joint_pos_target_l2, weight=-1.0, params={"asset_cfg": POLE, "target": 0.0})
    # keeps the cart near the middle of the rail: drifting off it ends the episode beyond the discount horizon
    cart_pos = RewTerm(func=mdp.joint_pos_target_l2, weight=-0.05, params={"asset_cfg": CART, "target": 0.0})
    cart_vel = RewTerm(func=mdp.joint_vel_l1, weight=-0.01, params={"asset_cfg": CART})
    pole_vel = RewTerm(func=mdp.joint_vel_l1, weight=-0.005, params={"asset_cfg": POLE})
    success_rate = RewTerm(func=mdp.survival_success_rate, weight=0.0)


@configclass
class TerminationsCfg:
    """Time out; cart off the rail; pole fallen."""

    time_out = DoneTerm(func=mdp.time_out, time_out=True)
    cart_out_of_bounds = DoneTerm(
        func=mdp.joint_pos_out_of_manual_limit, params={"asset_cfg": CART, "bounds": (-MAX_CART_POS, MAX_CART_POS)}
    )
    pole_fallen = DoneTerm(
        func=mdp.joint_pos_out_of_manual_limit,
        params={"asset_cfg": POLE, "bounds": (-MAX_POLE_ANGLE, MAX_POLE_ANGLE)},
    )


@configclass
class CartpoleEnvCfg(ManagerBasedRLEnvCfg):
    """WAM-Cartpole: 5 s episodes at 60 Hz control (120 Hz physics)."""

    scene: CartpoleSceneCfg = CartpoleSceneCfg(num_envs=512, env_spacing=4.0, clone_in_fabric=True)
    observations: ObservationsCfg = ObservationsCfg()
    actions: ActionsCfg = ActionsCfg()
    rewards: RewardsCfg = RewardsCfg()
    terminations: TerminationsCfg = TerminationsCfg()
    events: EventCfg = EventCfg()

    def __post_init__(self):
        self.decimation = 2
        self.episode_length_s = 5.0
        self.sim.dt = 1 / 120
        self.sim.render_interval = self.decimation
        self.sim.physics = physics_presets(njmax=8, nconmax=4)
