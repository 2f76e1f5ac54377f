"""The Labeler on real Isaac Lab envs: labels equal torch recomputations from the recorded states, never span a
reset, and obey physics (work-energy theorem on a frictionless cart-pole)."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.labels.labeler import Labeler, LabelerCfg
from wam_isaac.rollout.terminal import TerminalRecorder

pytestmark = pytest.mark.integration


def frictionless(env_cfg) -> None:
    env_cfg.scene.robot.actuators["cart_actuator"].damping = 0.0
    env_cfg.events.rail_damping = None
    env_cfg.events.slider_friction = None
    env_cfg.actions.cart_force.latency_steps = (0, 0)
    env_cfg.actions.cart_force.strength_scale = (1.0, 1.0)


@pytest.fixture(scope="module")
def cartpole(make_env):
    with make_env("WAM-Cartpole", num_envs=4, configure=frictionless) as env:
        env.reset()
        yield env


def test_joint_deltas_equal_the_recorded_states_and_never_span_a_reset(cartpole):
    """Every step, the last one of each episode included: that step is labeled inside env.step before the reset
    (TerminalRecorder), against the final state it recorded; the other envs are labeled after the step."""
    env = cartpole
    labeler = Labeler(env, LabelerCfg(horizons=(1, 3)))
    terminal = TerminalRecorder(env, labeler).install()
    env.reset()
    labeler.reset()
    robot = env.scene["robot"]
    states = [robot.data.joint_pos.torch.clone()]  # the state after each step, s_T for envs that just ended
    lengths = torch.zeros(4, dtype=torch.long)  # steps of each env's episode so far
    ended = 0
    torch.manual_seed(0)
    try:
        for _ in range(40):
            terminal.arm()
            env.step(torch.rand(4, 1) * 2 - 1)
            terminal.disarm()
            labels = labeler.compute(new_step=not terminal.fired)
            finished = terminal.finished if terminal.fired else torch.zeros(4, dtype=torch.bool)
            lengths += 1
            after = robot.data.joint_pos.torch.clone()
            if terminal.fired:
                after[finished] = terminal.final["states/robot/joint_pos"][finished]
            states.append(after)
            for k in (1, 3):
                merged = (
                    {
                        key: torch.where(_rows(finished, value), terminal.labels.get(key, value), value)
                        for key, value in labels.items()
                    }
                    if terminal.fired
                    else labels
                )
                valid = merged[f"delta_{k}/valid"].bool()
                assert torch.equal(valid, lengths >= k)
                if len(states) > k:
                    expected = states[-1] - states[-1 - k]
                    expected[:, 1] = torch.atan2(torch.sin(expected[:, 1]), torch.cos(expected[:, 1]))  # pole wraps
                    got = merged[f"delta_{k}/robot/joint_pos"]
                    torch.testing.assert_close(got[valid], expected[valid], atol=1e-5, rtol=0)
                    assert (got[~valid] == 0).all(), "a label spanning a reset must be zeroed"
                # after the reset the labeler's own buffers hold the new episodes' first step: nothing spans it
                assert (labels[f"delta_{k}/valid"][finished] == 0).all()
            ended += int(finished.sum())
            lengths[finished] = 0
            states[-1] = robot.data.joint_pos.torch.clone()  # the next step starts from the new episodes' state
    finally:
        terminal.uninstall()
    assert ended > 0, "the test needs at least one reset inside the rollout"


def _rows(mask: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    return mask.view(-1, *[1] * (value.ndim - 1))


def test_energy_change_equals_actuator_work_without_friction(cartpole):
    """Work-energy theorem: with no damping or friction, the mechanical energy gained over a step is the work the
    cart force did (trapezoidal work estimate; the solver's implicit integration costs a little)."""
    env = cartpole
    labeler = Labeler(env, LabelerCfg(horizons=(1,)))
    env.reset()
    labeler.reset()
    gained, work = [], []
    for step in range(20):
        action = torch.full((4, 1), 0.3 if step < 10 else -0.3)
        env.step(action)
        labels = labeler.compute()
        valid = labels["delta_1/valid"].bool()
        gained.append(labels["energy/delta"][valid])
        work.append(labels["energy/actuator_work"][valid])
    gained, work = torch.cat(gained), torch.cat(work)
    assert work.abs().mean() > 0.05, "the force must do measurable work"
    torch.testing.assert_close(gained, work, atol=0.02, rtol=0.1)


def test_passive_cartpole_energy_is_conserved(cartpole):
    env = cartpole
    labeler = Labeler(env, LabelerCfg(horizons=(1,)))
    env.reset()
    labeler.reset()
    start = labeler._energy_prev.clone()
    total_change = torch.zeros(4)
    for _ in range(15):
        env.step(torch.zeros(4, 1))
        labels = labeler.compute()
        total_change += labels["energy/delta"]
        assert (labels["energy/actuator_work"].abs() < 1e-6).all()
    # a swinging pole trades potential for kinetic energy; their sum stays within 2% of the pole's energy scale
    scale = 0.1 * 9.81 * 0.5
    assert (total_change.abs() < 0.02 * scale + 1e-3).all(), (total_change, start)
