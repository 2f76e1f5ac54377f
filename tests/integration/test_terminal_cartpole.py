"""The last step of every WAM-Cartpole episode: each label family recomputed from the stored states and the final
state s_T (Episode.final), and no stored label depending on what happens after the reset."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest
import torch
from terminal_steps import (
    check_deltas,
    check_end_kinds,
    check_final_is_the_state_before_the_reset,
    check_flags,
    check_last_step_energy,
    ended_episodes,
    rollout,
)

from wam_isaac.rollout.policies import make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Cartpole"
NUM_ENVS = 6
STEPS = 70


def short_episodes(env_cfg) -> None:
    env_cfg.episode_length_s = 0.5  # 30 steps: time-outs, pole falls and budget ends in one short rollout


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=NUM_ENVS, configure=short_episodes) as env:
        yield env


@pytest.fixture(scope="module")
def run(env):
    torch.manual_seed(0)
    return rollout(env, TASK, make_policy("random", env, TASK), STEPS)


def test_episodes_end_by_termination_time_out_and_budget(env, run):
    writer, _, stats = run
    assert stats.transitions == NUM_ENVS * STEPS
    check_end_kinds(writer, int(env.max_episode_length))
    check_flags(writer, int(env.max_episode_length))


def test_final_state_is_the_state_before_the_reset(run):
    writer, spy, _ = run
    check_final_is_the_state_before_the_reset(writer, spy)


def test_delta_and_body_frame_velocity_labels_of_every_step_including_the_last(run):
    writer, _, _ = run
    assert check_deltas(writer) > NUM_ENVS * STEPS


def test_energy_labels_of_the_last_step(env, run):
    writer, spy, _ = run
    assert check_last_step_energy(writer, spy, env) >= NUM_ENVS


def test_termination_flag_of_the_last_step_from_the_final_joint_state(env, run):
    """Cart beyond 3 m or pole beyond 90 degrees in s_T, closed form; never before the last step."""
    writer, spy, _ = run
    for episode, _ in ended_episodes(writer, spy):
        cart, pole = episode.final["states/robot/joint_pos"]
        fallen = abs(cart) > 3.0 or abs(pole) > 0.5 * np.pi
        assert bool(episode.data["labels/flags/terminated"][-1]) == fallen
        q = episode.data["states/robot/joint_pos"]
        assert (np.abs(q[:, 0]) <= 3.0).all() and (np.abs(q[:, 1]) <= 0.5 * np.pi).all()


def test_no_stored_label_depends_on_the_next_episode(env):
    """Every env that just reset gets another initial state (cart and pole moved by 0.7 m and -0.3 rad) before
    the driver labels the step: the episodes that ended there still hold, last step and final state included,
    exactly the state the spy copied before the reset and labels recomputed from it; the next episodes start from
    the moved state. (Two rollouts of one env object cannot be compared bit for bit: MuJoCo-Warp's solver
    iterates until every env converges, so a changed env changes the others by rounding, which contacts amplify.)"""
    robot = env.scene["robot"]
    offset = torch.tensor([0.7, -0.3])
    reset_states = []

    def perturb(_step):
        new = env.episode_length_buf == 0
        position = robot.data.joint_pos.torch.clone()
        reset_states.extend((int(i), position[i].clone()) for i in new.nonzero()[:, 0])
        position[new] += offset
        robot.write_joint_position_to_sim_index(position=position)

    torch.manual_seed(1)
    writer, spy, _ = rollout(env, TASK, make_policy("random", env, TASK), STEPS, on_step=perturb)
    check_final_is_the_state_before_the_reset(writer, spy)
    assert check_deltas(writer) > NUM_ENVS * STEPS
    assert check_last_step_energy(writer, spy, env) >= NUM_ENVS
    check_next_episodes_start_moved(writer, reset_states, "states/robot/joint_pos", offset)


def check_next_episodes_start_moved(writer, reset_states, key, offset) -> None:
    """Each episode after an env's first starts from the state the reset produced, moved by ``offset``."""
    produced = defaultdict(list)
    for env_id, state in reset_states:
        produced[env_id].append(state.numpy())
    later = [e for e in writer.episodes if e.attrs["episode_index"] > 0]
    assert len(later) == len(reset_states) > NUM_ENVS
    for episode in later:
        expected = produced[episode.env_id][episode.attrs["episode_index"] - 1] + offset.numpy()
        np.testing.assert_allclose(episode.data[key][0], expected, atol=1e-6)
