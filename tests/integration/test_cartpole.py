"""WAM-Cartpole in a real Isaac Lab env on the CPU (Newton / MuJoCo-Warp), 4 envs."""

from __future__ import annotations

import math

import pytest
import torch

pytestmark = pytest.mark.integration

TASK = "WAM-Cartpole"


def frictionless(env_cfg) -> None:
    """No rail damping or friction, full strength: the cart then obeys F = (M + m/4) a (see below)."""
    env_cfg.scene.robot.actuators["cart_actuator"].damping = 0.0
    env_cfg.events.rail_damping = None
    env_cfg.events.slider_friction = None
    env_cfg.actions.cart_force.strength_scale = (1.0, 1.0)
    env_cfg.actions.cart_force.latency_steps = (0, 3)


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=4, configure=frictionless) as env:
        env.reset()
        yield env


def set_state(env, cart_pos=0.0, pole_angle=0.0) -> None:
    """Put every env's cart at ``cart_pos`` [m] and pole at ``pole_angle`` [rad], at rest."""
    robot = env.scene["robot"]
    n = env.num_envs
    pos = torch.tensor([[cart_pos, pole_angle]]).repeat(n, 1)
    robot.write_joint_position_to_sim_index(position=pos)
    robot.write_joint_velocity_to_sim_index(velocity=torch.zeros(n, 2))


def cart_term(env):
    return env.action_manager.get_term("cart_force")


def test_observation_groups_have_the_documented_shapes(env):
    obs = env.observation_manager.compute()
    assert obs["policy"].shape == (4, 4)  # cart pos, pole angle, cart vel, pole vel
    assert obs["critic"].shape == (4, 4 + 2 + 1 + 1 + 1)  # + masses, damping, latency, strength
    assert torch.isfinite(obs["policy"]).all() and torch.isfinite(obs["critic"]).all()
    masses = obs["critic"][:, 4:6]
    assert ((masses[:, 0] >= 0.7 - 1e-4) & (masses[:, 0] <= 1.3 + 1e-4)).all(), "cart mass outside DR range"
    assert ((masses[:, 1] >= 0.07 - 1e-5) & (masses[:, 1] <= 0.13 + 1e-5)).all(), "pole mass outside DR range"


def test_rewards_stay_in_range(env):
    env.reset()
    dt = env.step_dt
    for _ in range(30):
        _, reward, terminated, _, _ = env.step(torch.rand(4, 1) * 2 - 1)
        assert torch.isfinite(reward).all()
        # alive (1) is the only positive term; penalties: termination (2), pole angle^2 <= (pi/2)^2,
        # 0.05 cart position^2 <= 0.05 * 3^2, velocities
        assert (reward <= 1.0 * dt + 1e-6).all()
        assert (reward >= -(2.0 + (math.pi / 2) ** 2 + 0.05 * 9 + 1.0) * dt).all()


def test_cart_leaving_the_rail_terminates_and_resets(env):
    env.reset()
    set_state(env, cart_pos=2.9)
    cart_term(env).latency[:] = 0
    for _ in range(60):
        _, _, terminated, truncated, _ = env.step(torch.ones(4, 1))
        if terminated.all():
            break
    assert terminated.all() and not truncated.any(), "no termination within 60 steps pushing off the rail"
    assert (env.episode_length_buf == 0).all()
    cart_pos = env.scene["robot"].data.joint_pos.torch[:, 0]
    assert (cart_pos.abs() <= 1.0 + 1e-4).all(), "reset must put the cart back in its initial range"


def test_mass_randomization_changes_the_response(env):
    """Same state, same force: each env's cart accelerates as F / (M + m/4), with its own sampled masses.

    For a uniform pole hinged on the cart, upright and at rest, the coupled equations give
    x'' = F / (M + m/4): the pole's inertia about the hinge (m l^2 / 3, l its length) absorbs 3/4 of its mass.
    """
    env.reset()
    set_state(env)
    cart_term(env).latency[:] = 0
    force = 20.0  # [N] = 100 * action 0.2
    env.step(torch.full((4, 1), 0.2))
    robot = env.scene["robot"]
    velocity = robot.data.joint_vel.torch[:, 0]
    masses = robot.data.body_mass.torch
    cart, pole = robot.find_bodies(["cart", "pole"])[0]
    expected = force / (masses[:, cart] + masses[:, pole] / 4) * env.step_dt
    assert masses[:, cart].std() > 0.02, "DR should have given the envs different cart masses"
    torch.testing.assert_close(velocity, expected, rtol=0.03, atol=1e-3)
    assert velocity.std() > 0.01, "different masses must give different velocities"


def test_action_latency_delays_the_response_by_its_steps(env):
    env.reset()
    set_state(env)
    term = cart_term(env)
    latency = torch.tensor([0, 1, 2, 3])
    term.latency[:] = latency
    first_motion = torch.full((4,), -1)
    for step in range(6):
        env.step(torch.full((4, 1), 0.5))
        moving = env.scene["robot"].data.joint_vel.torch[:, 0].abs() > 1e-3
        first_motion = torch.where((first_motion < 0) & moving, torch.tensor(step), first_motion)
    assert first_motion.tolist() == latency.tolist()


def test_dr_params_are_read_back_per_env(env):
    from wam_isaac.envs.dr import read_dr_params

    params = read_dr_params(env)
    robot = env.scene["robot"]
    cart, pole = robot.find_bodies(["cart", "pole"])[0]
    masses = params["robot/body_mass"]
    assert masses.shape == (4, robot.num_bodies)
    # startup DR scaled the authored 1 kg cart and 0.1 kg pole by 0.7..1.3, differently per env
    assert ((masses[:, cart] >= 0.7 - 1e-4) & (masses[:, cart] <= 1.3 + 1e-4)).all()
    assert ((masses[:, pole] >= 0.07 - 1e-5) & (masses[:, pole] <= 0.13 + 1e-5)).all()
    assert masses[:, cart].unique().numel() == 4
    term = cart_term(env)
    assert torch.equal(params["action/cart_force/latency"], term.latency)
    assert params["robot/joint_damping"].shape == (4, 2)
    assert params["robot/shape_friction"].shape[0] == 4


def test_lqr_expert_balances_every_env_for_a_full_episode(env):
    from wam_isaac_tasks.cartpole.expert import CartpoleLQRExpert

    env.reset()
    cart_term(env).latency[:] = torch.tensor([0, 1, 0, 1])
    expert = CartpoleLQRExpert(env)
    obs = env.observation_manager.compute()
    failures = torch.zeros(4, dtype=torch.bool)
    for _ in range(int(env.max_episode_length) - 1):
        obs, _, terminated, _, _ = env.step(expert(obs))
        failures |= terminated
    assert not failures.any(), (
        f"the pole fell or the cart left the rail in envs {failures.nonzero().flatten().tolist()}"
    )
    pole = env.scene["robot"].data.joint_pos.torch[:, 1]
    assert (pole.abs() < 0.05).all(), "the expert must hold the pole upright"
