"""The last step of every WAM-Quadruped-Flat episode: deltas, body-frame velocity changes, energy, contacts and
flags recomputed from the stored states, the final state s_T and the sensed forces before the reset, and no stored
label depending on the next episode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from terminal_steps import (
    check_deltas,
    check_end_kinds,
    check_final_is_the_state_before_the_reset,
    check_flags,
    check_last_step_contacts,
    check_last_step_energy,
    check_last_step_penetration,
    ended_episodes,
    rollout,
)

from wam_isaac.rollout.policies import make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Quadruped-Flat"
NUM_ENVS = 4
STEPS = 70
BASE_CONTACT = 1.0
"""[N] The quadruped's termination: a net contact force on the base above 1 N."""


def short_episodes(env_cfg) -> None:
    env_cfg.episode_length_s = 0.6  # 30 steps


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=NUM_ENVS, configure=short_episodes) as env:
        yield env


def tip_over(env):
    """An ``on_step`` that drops env 0's robot upside down onto its base every 13th step: falls end episodes by
    the base-contact termination (a random policy rarely falls in 30 steps)."""
    robot = env.scene["robot"]

    def on_step(step):
        if step % 13 == 5:
            pose = robot.data.root_link_pose_w.torch.clone()
            pose[0, 2] = env.scene.env_origins[0, 2] + 0.12
            pose[0, 3:] = torch.tensor([1.0, 0.0, 0.0, 0.0])  # half a turn about x (xyzw)
            robot.write_root_pose_to_sim_index(root_pose=pose)

    return on_step


LIFT = 0.05
"""[m] How far the perturbation lifts the robots that just reset (the next episodes' first state)."""


@pytest.fixture(scope="module")
def run(env):
    """A random-policy rollout in which every env that just reset is lifted by :data:`LIFT` before the driver
    labels the step (what happens after the reset, that no stored label of the ended episode may depend on)."""
    robot = env.scene["robot"]
    produced = []
    fall = tip_over(env)

    def perturb(step):
        fall(step)
        new = env.episode_length_buf == 0
        pose = robot.data.root_link_pose_w.torch.clone()
        produced.extend(pose[new, 2].tolist())
        pose[new, 2] += LIFT
        robot.write_root_pose_to_sim_index(root_pose=pose)

    torch.manual_seed(0)
    writer, spy, stats = rollout(env, TASK, make_policy("random", env, TASK), STEPS, on_step=perturb)
    return writer, spy, stats, produced


def test_episodes_end_by_termination_time_out_and_budget(env, run):
    writer, _, stats, _ = run
    assert stats.transitions == NUM_ENVS * STEPS
    check_end_kinds(writer, int(env.max_episode_length))
    check_flags(writer, int(env.max_episode_length))


def test_final_state_is_the_state_before_the_reset(run):
    writer, spy, _, _ = run
    check_final_is_the_state_before_the_reset(writer, spy)


def test_delta_and_body_frame_velocity_labels_of_every_step_including_the_last(run):
    writer, _, _, _ = run
    assert check_deltas(writer) > NUM_ENVS * STEPS


def test_energy_and_contact_labels_of_the_last_step(env, run):
    writer, spy, _, _ = run
    assert check_last_step_energy(writer, spy, env) >= NUM_ENVS
    checked, below = check_last_step_penetration(writer, spy, env, TASK)
    assert checked >= NUM_ENVS and below > 0
    assert check_last_step_contacts(writer, spy, threshold=1.0) >= NUM_ENVS


def test_termination_flag_of_the_last_step_from_the_force_on_the_base(env, run):
    writer, spy, _, _ = run
    base = list(env.scene["contact_forces"].sensor_names).index("base")
    for episode, truth in ended_episodes(writer, spy):
        fell = np.linalg.norm(truth["sensor/contact_forces"][base]) > BASE_CONTACT
        assert bool(episode.data["labels/flags/terminated"][-1]) == fell
        assert bool(episode.data["labels/contact/contact_forces/flag"][-1, base]) == fell


def test_no_stored_label_depends_on_the_next_episode(env, run):
    """In ``run`` every env that just reset was lifted before the driver labeled the step: the episodes that ended
    there still hold exactly the state the spy copied before the reset (the tests above recompute every label of
    their last step from it), and the next episodes start from the lifted state. (Why not two rollouts compared bit
    for bit: MuJoCo-Warp's solver iterates until every env converges, so a changed env changes the others by
    rounding, which contacts amplify.)"""
    writer, spy, _, produced = run
    check_final_is_the_state_before_the_reset(writer, spy)
    later = [e for e in writer.episodes if e.attrs["episode_index"] > 0]
    assert NUM_ENVS <= len(later) <= len(produced)  # an episode begun at the last step is empty
    moved = np.array(produced) + LIFT
    for episode in later:
        assert np.abs(moved - episode.data["states/robot/root_pose"][0, 2]).min() < 1e-6
