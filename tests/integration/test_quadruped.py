"""WAM-Quadruped-Flat in a real Isaac Lab env on the CPU (Newton / MuJoCo-Warp), 4 envs."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.integration

TASK = "WAM-Quadruped-Flat"
NUM_ENVS = 4
GRAVITY = 9.81
"""[m/s^2]"""


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=NUM_ENVS) as env:
        env.reset()
        yield env


def robot(env):
    return env.scene["robot"]


def zero_action(env) -> torch.Tensor:
    return torch.zeros(env.num_envs, env.action_manager.total_action_dim)


def place(env, height: float, quat_xyzw=(0.0, 0.0, 0.0, 1.0)) -> None:
    """Put every robot at rest in its default joint pose, its base ``height`` [m] above its env origin."""
    asset = robot(env)
    n = env.num_envs
    pos = env.scene.env_origins.clone()
    pos[:, 2] += height
    pose = torch.cat([pos, torch.tensor([quat_xyzw]).repeat(n, 1)], dim=-1)
    asset.write_root_pose_to_sim_index(root_pose=pose)
    asset.write_root_velocity_to_sim_index(root_velocity=torch.zeros(n, 6))
    asset.write_joint_position_to_sim_index(position=asset.data.default_joint_pos.torch.clone())
    asset.write_joint_velocity_to_sim_index(velocity=torch.zeros(n, asset.num_joints))


def test_observation_groups_have_the_documented_shapes_and_dr_ranges(env):
    obs = env.observation_manager.compute()
    # base lin vel 3, ang vel 3, gravity 3, command 3, joint pos 12, joint vel 12, last action 12
    assert obs["policy"].shape == (NUM_ENVS, 48)
    # + base height 1, base mass 1, foot friction 4, stiffness 12, damping 12, latency 1, strength 1, foot forces 4
    assert obs["critic"].shape == (NUM_ENVS, 48 + 1 + 1 + 4 + 12 + 12 + 1 + 1 + 4)
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all()
    critic = obs["critic"][:, 48:]
    base_mass, friction = critic[:, 1], critic[:, 2:6]
    stiffness, latency, strength = critic[:, 6:18], critic[:, 30], critic[:, 31]
    # the trunk is authored at 6 kg; startup DR adds -1..+2 kg, differently per env
    assert ((base_mass >= 5.0 - 1e-4) & (base_mass <= 8.0 + 1e-4)).all(), base_mass
    assert base_mass.unique().numel() == NUM_ENVS
    assert ((friction >= 0.4 - 1e-5) & (friction <= 1.25 + 1e-5)).all(), friction
    assert ((stiffness >= 25.0 * 0.8 - 1e-3) & (stiffness <= 25.0 * 1.2 + 1e-3)).all(), stiffness
    assert set(latency.tolist()) <= {0.0, 1.0}
    assert ((strength >= 0.9) & (strength <= 1.1)).all()


def test_robot_stands_with_zero_action_and_feet_carry_its_weight(env):
    env.reset()
    place(env, height=0.36)
    heights = []
    for _ in range(50):  # 1 s
        _, _, terminated, _, _ = env.step(zero_action(env))
        assert not terminated.any(), "the robot fell while standing still"
        heights.append(robot(env).data.root_pos_w.torch[:, 2].clone())
    heights = torch.stack(heights)
    # nominal stance 0.35 m; the PD legs sag ~3 cm under the (randomized) weight
    assert (heights > 0.27).all() and (heights < 0.38).all(), heights.min(dim=0).values
    gravity_z = robot(env).data.projected_gravity_b.torch[:, 2]
    assert (gravity_z < -0.97).all(), "the trunk should stay level (tilt < 14 deg)"
    # at rest, the four feet hold the whole robot: sum of foot contact forces = total mass * g
    sensor = env.scene["contact_forces"]
    feet = sensor.find_sensors(".*_foot")[0]
    foot_forces = sensor.data.net_forces_w.torch[:, feet, 2].sum(dim=1)
    weight = robot(env).data.body_mass.torch.sum(dim=1) * GRAVITY
    torch.testing.assert_close(foot_forces, weight, rtol=0.1, atol=0.0)


def test_standing_feet_do_not_sink_into_the_ground(env):
    from wam_isaac_assets.builders.quadruped import FOOT_RADIUS

    env.reset()
    place(env, height=0.36)
    feet = robot(env).find_bodies(".*_foot")[0]
    sensor = env.scene["contact_forces"]
    sensed_feet = sensor.find_sensors(".*_foot")[0]
    depths, in_contact, slip = [], [], []
    for step in range(50):  # 1 s
        env.step(zero_action(env))
        if step >= 25:  # landed and settled
            foot_z = robot(env).data.body_link_pos_w.torch[:, feet, 2] - env.scene.env_origins[:, 2:3]
            depths.append(FOOT_RADIUS - foot_z)
            in_contact.append(sensor.data.net_forces_w.torch[:, sensed_feet, 2] > 1.0)
            vel = robot(env).data.body_link_vel_w.torch[:, feet]  # the contact point moves at v + w x (0, 0, -r)
            lowest = torch.tensor([0.0, 0.0, -FOOT_RADIUS]).expand_as(vel[..., 3:])
            slip.append((vel[..., :3] + torch.cross(vel[..., 3:], lowest, dim=-1))[..., :2].norm(dim=-1))
    depths, slip = torch.stack(depths), torch.stack(slip)
    # no chatter: every foot carries weight (> 1 N) at every control step, none flickers off
    assert torch.stack(in_contact).all()
    # no sliding: the feet's contact points creep at 3.4-4.1 mm/s (median; p95 4.6-6.8) while the PD legs settle,
    # over 0.5-3 s (MuJoCo's soft friction lets a loaded contact creep; a sliding foot would move at cm/s to m/s)
    assert slip.median() < 0.006 and slip.max() < 0.015, (slip.median(), slip.max())
    # every foot stands on the ground (within 1 mm), none sinks: contact solimp 0.99 holds a foot carrying a quarter of
    # 11-14 kg at about 0.2 mm (Newton's default impedance: 0.9 mm median, 3.6 mm p95)
    assert (depths > -0.001).all(), depths.min()
    assert depths.median() < 0.0005 and depths.max() < 0.0015, (depths.median(), depths.max())


def test_rewards_stay_in_range(env):
    env.reset()
    terms = env.reward_manager.active_terms
    for _ in range(30):
        _, reward, _, _, _ = env.step(torch.rand_like(zero_action(env)) * 2 - 1)
        assert torch.isfinite(reward).all()
        per_term = {
            name: torch.tensor([dict(env.reward_manager.get_active_iterable_terms(i))[name][0] for i in range(4)])
            for name in terms
        }
        # exponential tracking kernels lie in (0, weight]; every penalty is <= 0
        assert ((per_term["track_lin_vel_xy_exp"] > 0) & (per_term["track_lin_vel_xy_exp"] <= 1.5 + 1e-6)).all()
        assert ((per_term["track_ang_vel_z_exp"] > 0) & (per_term["track_ang_vel_z_exp"] <= 0.75 + 1e-6)).all()
        for name in terms:
            if name not in ("track_lin_vel_xy_exp", "track_ang_vel_z_exp", "feet_air_time"):
                assert (per_term[name] <= 1e-6).all(), f"{name} is a penalty but was positive: {per_term[name]}"
        total = sum(per_term.values()) * env.step_dt
        torch.testing.assert_close(reward, total, rtol=1e-4, atol=1e-6)


def test_base_contact_terminates_and_resets_upright(env):
    env.reset()
    place(env, height=0.12, quat_xyzw=(1.0, 0.0, 0.0, 0.0))  # upside down: the trunk lands on its back
    terminated = torch.zeros(NUM_ENVS, dtype=torch.bool)
    for _ in range(20):
        _, _, term, truncated, _ = env.step(zero_action(env))
        terminated |= term
        if terminated.all():
            break
    assert terminated.all() and not truncated.any(), "landing on the trunk must terminate within 0.4 s"
    assert (env.episode_length_buf <= 1).all()
    asset = robot(env)
    # reset: default height 0.37 m (no z randomization), yaw-only orientation
    assert (asset.data.root_pos_w.torch[:, 2] > 0.3).all()
    assert (asset.data.projected_gravity_b.torch[:, 2] < -0.95).all()


def test_base_mass_randomization_changes_the_response_to_the_same_action(env):
    """In the air, swinging the legs back pushes the trunk forward; with no external horizontal force the robot's
    linear momentum stays zero, so the trunk's speed is the legs' momentum divided by the trunk's own (randomized)
    mass: the heavier the trunk, the slower it moves for the same action."""
    env.reset()
    asset = robot(env)
    # same gains everywhere (startup DR randomized them) so the base mass is the only difference between envs
    stiffness = torch.full((NUM_ENVS, asset.num_joints), 25.0)
    damping = torch.full((NUM_ENVS, asset.num_joints), 0.5)
    asset.write_joint_stiffness_to_sim_index(stiffness=stiffness)
    asset.write_joint_damping_to_sim_index(damping=damping)
    term = env.action_manager.get_term("joint_pos")
    term.latency[:] = 0
    term.strength[:] = 1.0
    place(env, height=2.0)
    action = zero_action(env)
    thighs = asset.find_joints(".*_thigh_joint")[0]
    action[:, thighs] = 1.0  # thigh targets +0.25 rad: every foot swings backward
    env.step(action)
    masses = asset.data.body_mass.torch
    com_velocity_x = asset.data.body_com_lin_vel_w.torch[:, :, 0]
    momentum_x = (masses * com_velocity_x).sum(dim=1)
    base_velocity_x = com_velocity_x[:, 0]
    base_mass = masses[:, 0]
    # momentum balance with the masses DR wrote proves the physics uses them: had the solver kept the authored
    # 6 kg trunk, the trunk's momentum computed with the sampled 5..8 kg would be off by up to 33%
    # (measured residual: about 2% of the legs' momentum, the same in every env)
    leg_momentum_x = momentum_x - base_mass * base_velocity_x
    assert (momentum_x.abs() < 0.05 * leg_momentum_x.abs()).all(), (momentum_x, leg_momentum_x)
    assert (base_velocity_x > 0.01).all(), "the trunk must move forward as the feet swing back"
    order_by_mass = torch.argsort(base_mass)
    order_by_speed = torch.argsort(base_velocity_x, descending=True)
    assert torch.equal(order_by_mass, order_by_speed), (base_mass, base_velocity_x)
    lightest, heaviest = order_by_mass[0], order_by_mass[-1]
    speed_ratio = base_velocity_x[lightest] / base_velocity_x[heaviest]
    assert speed_ratio > 1.1, f"trunk masses {base_mass.tolist()} gave nearly the same speed ({speed_ratio:.3f}x)"


def test_push_event_changes_the_base_velocity(env):
    cfg = env.event_manager.get_term_cfg("push_robot")
    assert cfg.interval_range_s == (10.0, 15.0)
    assert cfg.params["velocity_range"] == {"x": (-0.5, 0.5), "y": (-0.5, 0.5)}
    env.reset()
    place(env, height=0.36)
    for _ in range(25):
        env.step(zero_action(env))
    asset = robot(env)
    before = asset.data.root_lin_vel_w.torch.clone()
    start = asset.data.root_pos_w.torch[:, :2].clone()
    # the configured event, on envs 0 and 1 only, with the range's corners so the push is known
    pushed = torch.tensor([0, 1])
    params = dict(cfg.params, velocity_range={"x": (0.5, 0.5), "y": (-0.5, -0.5)})
    cfg.func(env, pushed, **params)
    change = asset.data.root_lin_vel_w.torch - before
    torch.testing.assert_close(change[pushed, :2], torch.tensor([[0.5, -0.5]]).repeat(2, 1), atol=1e-4, rtol=0)
    assert change[2:].abs().max() < 1e-6, "envs that were not pushed must keep their velocity"
    for _ in range(5):
        env.step(zero_action(env))
    travel = asset.data.root_pos_w.torch[:, :2] - start
    along_push = travel @ torch.tensor([1.0, -1.0]) / math.sqrt(2.0)
    assert (along_push[pushed] > 0.02).all(), f"pushed trunks must travel along the push: {along_push}"
    assert (along_push[2:].abs() < 0.01).all(), f"standing trunks must stay put: {along_push}"
