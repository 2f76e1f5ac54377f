"""The last step of every WAM-Cartpole episode: each label family recomputed from the stored states and the final
state s_T (Episode.final), and no stored label depending on what happens after the reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from terminal_steps import (
    assert_episodes_identical,
    check_deltas,
    check_end_kinds,
    check_final_is_the_state_before_the_reset,
    check_flags,
    check_last_step_energy,
    ended_episodes,
    first_episodes,
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


def test_no_stored_label_depends_on_the_next_episode(env, run):
    """The same rollout twice, but in the second every env that just reset gets another initial state (cart and
    pole moved by 0.7 m and -0.3 rad, no random draw): each env's first episode, its last step and final state
    included, is the same in both. Equal to rounding, not bit for bit: MuJoCo-Warp warm-starts its solver from the
    previous step and iterates until every env converges, so two rollouts of one env object differ by float
    rounding (a few 1e-6 here) even without the perturbation. (Both rollouts after ``run``: the env's very first
    reset differs from later ones in Isaac Lab.)"""
    robot = env.scene["robot"]

    def perturb(_step):
        new = env.episode_length_buf == 0
        position = robot.data.joint_pos.torch.clone()
        position[new] += torch.tensor([0.7, -0.3])
        robot.write_joint_position_to_sim_index(position=position)

    writers = []
    for on_step in (None, perturb):
        torch.manual_seed(0)
        writers.append(rollout(env, TASK, make_policy("random", env, TASK), STEPS, on_step=on_step)[0])
    assert_first_ended_episodes_identical(*writers)


def assert_first_ended_episodes_identical(writer, perturbed) -> None:
    ours, theirs = first_episodes(writer), first_episodes(perturbed)
    compared = [env_id for env_id, e in ours.items() if not e.attrs["budget_end"]]
    assert len(compared) == NUM_ENVS
    for env_id in compared:
        assert_episodes_identical(ours[env_id], theirs[env_id], rtol=1e-4, atol=1e-4)
    following = {e.env_id: e for e in writer.episodes if e.attrs["episode_index"] == 1}
    for episode in perturbed.episodes:
        if episode.attrs["episode_index"] == 1:
            before = following[episode.env_id].data["states/robot/joint_pos"][0]
            assert np.abs(episode.data["states/robot/joint_pos"][0] - before).min() > 0.2, "no perturbation"
