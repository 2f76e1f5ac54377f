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


def test_a_passive_swing_keeps_its_energy_and_the_pendulum_period(env):
    """With no force and no friction, the cart-pole conserves energy and swings with the closed-form period.

    Energy: translational + rotational kinetic energy of every body (simulator masses and inertias) + potential
    energy, against the pole's ``m g l_c``. Period: a small swing (0.14 rad) about the hanging position on a free cart
    has ``w^2 = m g l (M + m) / ((M + m)(I + m l^2) - m^2 l^2)`` (``l`` hinge to the pole's center, ``I`` the pole's
    inertia about its center), lengthened by ``1 + a^2 / 16`` at amplitude ``a``. Measured over 10 s (120 Hz): the
    small swing's period 1.5759 s against 1.5754 s closed form, its energy within 2e-4 of ``m g l_c``; swings through
    the bottom from 0.3-2 rad off upright fluctuate by up to 0.04 ``m g l_c`` and lose 0.013 of it.
    """
    robot = env.scene["robot"]
    env.reset()
    theta0 = torch.tensor([0.3, 1.0, 2.0, math.pi - 0.14])  # from upright [rad]; env 3 swings 0.14 rad about hanging
    robot.write_joint_position_to_sim_index(position=torch.stack([torch.zeros(4), theta0], dim=-1))
    robot.write_joint_velocity_to_sim_index(velocity=torch.zeros(4, 2))
    robot.actuators.target_command.set_effort_index(value=torch.zeros(4, 2))  # no force on the cart
    mass = robot.data.body_mass.torch
    inertia = robot.data.body_inertia.torch.reshape(4, -1, 3, 3)

    def energy() -> torch.Tensor:
        vel = robot.data.body_com_vel_w.torch
        spin = torch.einsum("nbi,nbij,nbj->n", vel[..., 3:], inertia, vel[..., 3:])  # the pole turns about one axis
        height = robot.data.body_com_pos_w.torch[..., 2]
        return 0.5 * (mass * (vel[..., :3] ** 2).sum(-1)).sum(-1) + 0.5 * spin + 9.81 * (mass * height).sum(-1)

    pole = robot.find_bodies("pole")[0][0]
    m, big_m, l_c = mass[:, pole], mass[:, robot.find_bodies("cart")[0][0]], 0.5
    energies, angles = [], []
    for _ in range(int(3.2 / env.physics_dt)):  # two small-swing periods
        env.scene.write_data_to_sim()
        env.sim.step(render=False)
        env.scene.update(dt=env.physics_dt)
        energies.append(energy())
        angles.append(robot.data.joint_pos.torch[:, 1].clone())
    energies, hanging = torch.stack(energies, 1), torch.stack(angles, 1)[3] - math.pi
    deviation = (energies - energies[:, :1]).abs().max(1).values / (m * 9.81 * l_c)
    assert (deviation[:3] < 0.06).all() and deviation[3] < 1e-3, deviation
    # period from the small swing's zero crossings (linearly interpolated)
    k = torch.nonzero(torch.sign(hanging[:-1]) != torch.sign(hanging[1:])).flatten()
    crossings = (k + hanging[k] / (hanging[k] - hanging[k + 1])) * env.physics_dt
    assert crossings.numel() >= 3, crossings
    period = 2 * (crossings[-1] - crossings[0]) / (crossings.numel() - 1)
    i_c = inertia[3, pole, 1, 1]
    total = big_m[3] + m[3]
    w2 = m[3] * 9.81 * l_c * total / (total * (i_c + m[3] * l_c**2) - (m[3] * l_c) ** 2)
    expected = 2 * math.pi / w2.sqrt() * (1 + 0.14**2 / 16)
    assert period == pytest.approx(expected.item(), rel=0.005), (period, expected)
