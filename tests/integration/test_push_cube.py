"""WAM-Push-Cube in a real Isaac Lab env on the CPU (Newton / MuJoCo-Warp), 4 envs."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.integration

TASK = "WAM-Push-Cube"
NUM_ENVS = 4
GRAVITY = 9.81
TABLE_TOP_Z = 0.40
CUBE_HALF = 0.025


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=NUM_ENVS) as env:
        env.reset()
        yield env


def zero_action(env) -> torch.Tensor:
    """Hold the ready pose."""
    return torch.zeros(env.num_envs, env.action_manager.total_action_dim)


def place_cube(env, xy: torch.Tensor, velocity_xy: torch.Tensor | None = None) -> None:
    """Put each env's cube flat on the table at ``xy`` [m, env frame], moving at ``velocity_xy`` [m/s]."""
    cube = env.scene["cube"]
    n = env.num_envs
    pose = torch.zeros(n, 7)
    pose[:, :2] = env.scene.env_origins[:, :2] + xy
    pose[:, 2] = env.scene.env_origins[:, 2] + TABLE_TOP_Z + CUBE_HALF
    pose[:, 6] = 1.0  # xyzw identity
    velocity = torch.zeros(n, 6)
    if velocity_xy is not None:
        velocity[:, :2] = velocity_xy
    cube.write_root_pose_to_sim_index(root_pose=pose)
    cube.write_root_velocity_to_sim_index(root_velocity=velocity)


def goal(env) -> torch.Tensor:
    return env.command_manager.get_command("goal").clone()


def test_observation_groups_have_the_documented_shapes_and_dr_ranges(env):
    obs = env.observation_manager.compute()
    # policy: joint pos 3, joint vel 3, tip xy 2, cube-tip xy 2, cube yaw features 2, goal-cube xy 2, last action 3
    assert obs["policy"].shape == (NUM_ENVS, 17)
    # critic: the same 17 + cube velocity 3, cube mass 1, link masses 3, frictions 2, gains 6, latency 1, strength 1
    assert obs["critic"].shape == (NUM_ENVS, 17 + 3 + 1 + 3 + 9 + 1 + 6 + 1 + 1)  # cube friction: its 9 shapes
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all()
    critic = obs["critic"]
    cube_mass, cube_mu, table_mu = critic[:, 20], critic[:, 24], critic[:, 25]
    assert ((cube_mass >= 0.1 - 1e-5) & (cube_mass <= 0.4 + 1e-5)).all(), (
        f"cube mass {cube_mass} outside 0.2 x [0.5, 2]"
    )
    assert ((cube_mu >= 0.3) & (cube_mu <= 0.6)).all() and ((table_mu >= 0.3) & (table_mu <= 0.6)).all()
    assert cube_mass.std() > 0.01 and cube_mu.std() > 0.01, "DR should give the envs different cubes"


def test_tip_stays_at_the_cube_mid_height_and_rewards_stay_in_range(env):
    env.reset()
    dt = env.step_dt
    tip = env.scene["robot"].find_bodies(["pusher"])[0][0]
    for _ in range(25):
        _, reward, _, _, _ = env.step(torch.rand(NUM_ENVS, 3) * 2 - 1)
        assert torch.isfinite(reward).all()
        # per second: two [0, 1] kernels (weights 1 + 1), progress 20 x (clipped to +-0.5 m/s), cube lost -50,
        # action rate and joint speed penalties (< 1 at |action| <= 1, joint speeds < 10 rad/s); once: success 10
        assert (reward <= (2.0 + 20 * 0.5) * dt + 10.0 + 1e-5).all(), reward
        assert (reward >= -(50.0 + 20 * 0.5 + 1.0) * dt - 1e-5).all(), reward
        tip_z = env.scene["robot"].data.body_pos_w.torch[:, tip, 2]
        torch.testing.assert_close(tip_z, torch.full_like(tip_z, TABLE_TOP_Z + CUBE_HALF), atol=2e-3, rtol=0)


def test_cube_at_goal_succeeds_resets_and_resamples_the_goal(env):
    env.reset()
    before = goal(env)
    place_cube(env, before)
    _, reward, terminated, truncated, info = env.step(zero_action(env))
    assert terminated.all() and not truncated.any()
    assert info["log"]["Metrics/success_rate"].item() == pytest.approx(1.0)
    # the success bonus (10) dominates the step's reward
    assert (reward > 9.0).all() and (reward < 11.0).all()
    assert (env.episode_length_buf == 0).all()
    after = goal(env)
    assert (torch.linalg.norm(after - before, dim=-1) > 1e-4).all(), "each reset must draw a new goal"
    assert ((after[:, 0] >= 0.46) & (after[:, 0] <= 0.56) & (after[:, 1].abs() <= 0.15)).all()
    # and the cube is back in its start region, more than 2 cm from the new goal
    cube_xy = env.scene["cube"].data.root_pos_w.torch[:, :2] - env.scene.env_origins[:, :2]
    assert ((cube_xy[:, 0] - 0.36).abs() <= 0.04 + 1e-4).all() and (cube_xy[:, 1].abs() <= 0.1 + 1e-4).all()


def test_cube_off_the_table_fails_and_counts_as_no_success(env):
    env.reset()
    place_cube(env, torch.tensor([[0.5, 0.47]]).repeat(NUM_ENVS, 1))  # center beyond the table's +y edge
    steps = 0
    fell = torch.zeros(NUM_ENVS, dtype=torch.bool, device=env.device)
    truncated_any = False
    for _ in range(20):  # the cube needs about 0.2 s (5 steps) to fall 5 cm; the envs' cubes (masses) one step apart
        _, _, terminated, truncated, info = env.step(zero_action(env))
        steps += 1
        fell |= terminated
        truncated_any |= bool(truncated.any())
        if fell.all():
            break
    assert fell.all() and not truncated_any, f"cube off the table not detected after {steps} steps"
    assert info["log"]["Metrics/success_rate"].item() == 0.0
    assert info["log"]["Episode_Termination/cube_off_table"].item() > 0


def test_time_out_truncates(env):
    env.reset()
    env.episode_length_buf[:] = env.max_episode_length - 1
    _, _, terminated, truncated, info = env.step(zero_action(env))
    assert truncated.all() and not terminated.any()
    assert info["log"]["Metrics/success_rate"].item() == 0.0
    assert (env.episode_length_buf == 0).all()


def test_friction_randomization_changes_how_far_a_sliding_cube_goes(env):
    """Same launch, different sampled frictions: a cube sliding at v0 stops after v0^2 / (2 mu g).

    MuJoCo takes the larger friction of the two touching shapes, so mu = max(cube, table).
    """
    env.reset()
    speed = 0.6  # [m/s] along +y, away from the arm's tip
    start = torch.tensor([[0.5, -0.15]]).repeat(NUM_ENVS, 1)
    place_cube(env, start, torch.tensor([[0.0, speed]]).repeat(NUM_ENVS, 1))
    # a goal far from the cube's path, so that no episode ends (and re-places its cube) on the way
    env.command_manager.get_term("goal").goal_xy[:] = torch.tensor([0.3, 0.3])
    for _ in range(25):  # 1 s: every cube has stopped (the slowest, mu = 0.3, stops after 0.2 s)
        env.step(zero_action(env))
    assert (env.episode_length_buf == 25).all(), "no env may have reset during the slide"
    travel = env.scene["cube"].data.root_pos_w.torch[:, 1] - env.scene.env_origins[:, 1] - start[:, 1]
    critic = env.observation_manager.compute()["critic"]
    mu = torch.maximum(critic[:, 24], critic[:, 33])  # the cube's 9 shapes share one draw (24..32), then the table
    expected = speed**2 / (2 * mu * GRAVITY)
    assert mu.max() - mu.min() > 0.05, f"the sampled frictions {mu} are too close to tell apart"
    # the spread of travels is the one friction predicts (a friction-blind simulation gives none)
    torch.testing.assert_close(travel.max() - travel.min(), expected.max() - expected.min(), rtol=0.3, atol=0.0)
    torch.testing.assert_close(travel, expected, rtol=0.25, atol=0.005)
    # the order of travels follows the order of frictions
    assert torch.equal(torch.argsort(travel), torch.argsort(-mu))


def test_diverging_physics_is_flagged_per_env(env):
    from wam_isaac_tasks.push_cube import mdp as push_mdp
    from wam_isaac_tasks.push_cube.push_cube_env_cfg import ARM

    env.reset()
    velocity = torch.zeros(NUM_ENVS, 2)
    velocity[1] = torch.tensor([12.0, 0.0])  # [m/s], beyond the 10 m/s a push can give
    place_cube(env, torch.tensor([[0.36, 0.0]]).repeat(NUM_ENVS, 1), velocity)
    robot_cfg = ARM.copy()
    robot_cfg.resolve(env.scene)
    flags = push_mdp.physics_diverged(env, max_joint_speed=50.0, max_cube_speed=10.0, robot_cfg=robot_cfg)
    assert flags.tolist() == [False, True, False, False]
