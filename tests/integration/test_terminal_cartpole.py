"""The last step of every WAM-Cartpole episode: each label family recomputed from the stored states and the final
state s_T (Episode.final), and no stored label depending on what happens after the reset."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from terminal_steps import (
    check_dataset_holds_what_was_written,
    check_deltas,
    check_end_kinds,
    check_final_is_the_state_before_the_reset,
    check_flags,
    check_last_step_energy,
    check_last_step_penetration,
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


OFFSET = torch.tensor([0.7, -0.3])
"""[m, rad] How far the perturbation moves the cart and the pole of the envs that just reset."""


@pytest.fixture(scope="module")
def run(env, tmp_path_factory):
    """A random-policy rollout in which every env that just reset gets its cart and pole moved by :data:`OFFSET`
    (no random draw) before the driver labels the step: what happens after the reset, that no stored label of the
    ended episode may depend on."""
    robot = env.scene["robot"]
    produced = []

    def perturb(_step):
        new = env.episode_length_buf == 0
        position = robot.data.joint_pos.torch.clone()
        produced.extend(position[new].tolist())
        position[new] += OFFSET
        robot.write_joint_position_to_sim_index(position=position)

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("cartpole") / "d"
    writer, spy, stats = rollout(env, TASK, make_policy("random", env, TASK), STEPS, on_step=perturb, out=out)
    return writer, spy, stats, produced, out


def test_episodes_end_by_termination_time_out_and_budget(env, run):
    writer, _, stats, _, _ = run
    assert stats.transitions == NUM_ENVS * STEPS
    check_end_kinds(writer, int(env.max_episode_length))
    check_flags(writer, int(env.max_episode_length))


def test_final_state_is_the_state_before_the_reset(run):
    writer, spy, _, _, _ = run
    check_final_is_the_state_before_the_reset(writer, spy)


def test_the_dataset_returns_every_episode_with_its_final_state(run):
    writer, _, _, _, out = run
    check_dataset_holds_what_was_written(out, writer)


def test_delta_and_body_frame_velocity_labels_of_every_step_including_the_last(run):
    writer, _, _, _, _ = run
    assert check_deltas(writer) > NUM_ENVS * STEPS


def test_energy_labels_of_the_last_step(env, run):
    writer, spy, _, _, _ = run
    assert check_last_step_energy(writer, spy, env) >= NUM_ENVS
    checked, below = check_last_step_penetration(writer, spy, env, TASK)
    assert checked >= NUM_ENVS


def test_termination_flag_of_the_last_step_from_the_final_joint_state(env, run):
    """Cart beyond 3 m or pole beyond 90 degrees in s_T, closed form; never before the last step."""
    writer, spy, _, _, _ = run
    for episode, _ in ended_episodes(writer, spy):
        cart, pole = episode.final["states/robot/joint_pos"]
        fallen = abs(cart) > 3.0 or abs(pole) > 0.5 * np.pi
        assert bool(episode.data["labels/flags/terminated"][-1]) == fallen
        q = episode.data["states/robot/joint_pos"]
        assert (np.abs(q[:, 0]) <= 3.0).all() and (np.abs(q[:, 1]) <= 0.5 * np.pi).all()


def test_no_stored_label_depends_on_the_next_episode(run):
    """In ``run`` every env that just reset was moved before the driver labeled the step: the episodes that ended
    there still hold exactly the state the spy copied before the reset (the tests above recompute every label of
    their last step from it), and the next episodes start from the moved state. (Why not two rollouts compared bit
    for bit: MuJoCo-Warp warm-starts its solver from the previous step and iterates until every env converges, so
    two rollouts of one env object differ by rounding even unperturbed; and the env's first reset differs from its
    later ones.)"""
    writer, spy, _, produced, _ = run
    check_final_is_the_state_before_the_reset(writer, spy)
    later = [e for e in writer.episodes if e.attrs["episode_index"] > 0]
    assert len(produced) - NUM_ENVS <= len(later) <= len(produced)  # an episode begun at the last step is empty
    moved = np.array(produced) + OFFSET.numpy()
    for episode in later:
        start = episode.data["states/robot/joint_pos"][0]
        assert np.abs(moved - start).max(axis=1).min() < 1e-6
