"""The last step of every WAM-Push-Cube episode: each label family (deltas, body-frame velocity changes, energy,
contacts, penetration, manipulation, flags) recomputed from the stored states and the final state s_T, and no
stored label depending on the next episode (another goal and cube placement after the reset)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from host_syncs import SyncCounter
from scipy.spatial.transform import Rotation
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

TASK = "WAM-Push-Cube"
NUM_ENVS = 6
STEPS = 80
SUCCESS_DISTANCE = 0.02
"""[m] Push-Cube's success termination: the cube's center within 2 cm of the goal (horizontally)."""


def short_episodes(env_cfg) -> None:
    env_cfg.episode_length_s = 2.0  # 50 steps: successes, time-outs and budget ends in one short rollout


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=NUM_ENVS, configure=short_episodes) as env:
        yield env


def policy(env):
    torch.manual_seed(0)
    return make_policy("scripted", env, TASK)  # noise makes it fail too often to end episodes by success


GOAL_OFFSET = torch.tensor([-0.05, 0.1])
"""[m] How far the perturbation moves the goal of the envs that just reset (their cube moves too)."""


@pytest.fixture(scope="module")
def run(env):
    """A scripted-expert rollout in which every env that just reset gets another goal and its cube moved (no random
    draw) before the driver labels the step: what happens after the reset, that no stored label of the ended
    episode may depend on (``object_to_goal_distance_xy`` used to read the new goal)."""
    goal, cube = env.command_manager.get_term("goal"), env.scene["cube"]
    produced = []

    def perturb(_step):
        new = env.episode_length_buf == 0
        produced.extend(goal.goal_xy[new].tolist())
        goal.goal_xy[new] += GOAL_OFFSET
        pose = cube.data.root_link_pose_w.torch.clone()
        pose[new, :2] += torch.tensor([0.03, -0.04])
        cube.write_root_pose_to_sim_index(root_pose=pose)

    writer, spy, stats = rollout(env, TASK, policy(env), STEPS, on_step=perturb, counter=SyncCounter())
    return writer, spy, stats, produced


def test_episodes_end_by_success_time_out_and_budget(env, run):
    writer, _, stats, _ = run
    assert stats.transitions == NUM_ENVS * STEPS
    check_end_kinds(writer, int(env.max_episode_length))
    check_flags(writer, int(env.max_episode_length))
    assert any(episode.success for episode in writer.episodes)


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
    assert check_last_step_contacts(writer, spy, threshold=0.1) >= NUM_ENVS


def test_penetration_manipulation_and_success_of_the_last_step_from_the_final_state(env, run):
    writer, spy, _, _ = run
    assert check_penetration_manipulation_success(env, writer, spy) >= NUM_ENVS


def check_penetration_manipulation_success(env, writer, spy) -> int:
    """From s_T and the episode's own goal (``obs/instruction/goal`` of s_T): the cube's depth below the table top
    (lowest corner sphere), its pose in the pusher's frame, the goal in the cube's frame, their horizontal
    distance, and the success flag (distance < 2 cm)."""
    from wam_isaac_assets.builders import cube as cube_geometry
    from wam_isaac_assets.builders import pusher as geometry

    pusher = env.scene["robot"].find_bodies(["pusher"])[0][0]
    for episode, truth in ended_episodes(writer, spy):
        d, final = episode.data, episode.final
        cube = final["states/cube/root_pose"].astype(np.float64)  # env frame, xyzw
        r_cube = Rotation.from_quat(cube[3:])
        # the cube stands on corner spheres: its deepest shape is the lowest sphere
        lowest = (cube[2] + r_cube.apply(np.array(cube_geometry.corner_centers()))[:, 2]).min()
        depth = max(geometry.TABLE_TOP_Z - (lowest - cube_geometry.CORNER_RADIUS), 0.0)
        np.testing.assert_allclose(d["labels/penetration/cube"][-1].max(), depth, atol=1e-5)
        ee = truth["robot/body_link_pose_w"][pusher].astype(np.float64)
        ee_pos, r_ee = ee[:3] - truth["origin"], Rotation.from_quat(ee[3:])
        np.testing.assert_allclose(
            d["labels/manipulation/object_pos_in_ee"][-1], r_ee.inv().apply(cube[:3] - ee_pos), atol=1e-5
        )
        np.testing.assert_allclose(
            d["labels/manipulation/object_rotvec_in_ee"][-1], (r_ee.inv() * r_cube).as_rotvec(), atol=1e-4
        )
        goal = np.append(final["obs/instruction/goal"], 0.0)  # the goal lies on the env origin's plane
        np.testing.assert_allclose(
            d["labels/manipulation/goal_pos_in_object"][-1], r_cube.inv().apply(goal - cube[:3]), atol=1e-5
        )
        distance = np.linalg.norm(goal[:2] - cube[:2])
        np.testing.assert_allclose(d["labels/manipulation/object_to_goal_distance_xy"][-1], distance, atol=1e-5)
        assert bool(d["labels/flags/success"][-1]) == (distance < SUCCESS_DISTANCE) == episode.success
        off_table = cube[2] + truth["origin"][2] < geometry.TABLE_TOP_Z - 0.05
        assert bool(d["labels/flags/terminated"][-1]) == (episode.success or off_table)
    return len(ended_episodes(writer, spy))


def test_no_stored_label_depends_on_the_next_episode(run):
    """In ``run`` every env that just reset got another goal and its cube moved before the driver labeled the
    step: the episodes that ended there still hold exactly the state the spy copied before the reset (the tests
    above recompute every label of their last step from it and from the episode's own goal), and the next episodes
    have the moved goal from their second step on (the first step's observations are computed inside env.step,
    before the move). (Why not two rollouts compared bit for bit: see test_terminal_cartpole.)"""
    writer, spy, _, produced = run
    check_final_is_the_state_before_the_reset(writer, spy)
    later = [e for e in writer.episodes if e.attrs["episode_index"] > 0 and e.num_samples > 1]
    assert len(later) >= NUM_ENVS
    moved = {tuple(np.round(np.array(g) + GOAL_OFFSET.numpy(), 5)) for g in produced}
    for episode in later:
        goals = episode.data["obs/instruction/goal"][1:]
        assert (goals == goals[0]).all() and tuple(np.round(goals[0].astype(np.float64), 5)) in moved


def test_at_most_one_host_synchronization_per_step(run):
    """The driver, the collector, the labeler and the pre-reset recorder (everything but Isaac Lab's own
    ``env.step``, the policy and the test's perturbation) make at most one host synchronization per step in steady
    state, steps where episodes end included: counted in ``run`` with :class:`host_syncs.SyncCounter` (the calls
    that would make a CUDA host wait)."""
    writer = run[0]
    counts = np.array(writer.per_step)
    syncs, episodes = np.diff(counts[:, 0])[4:], np.diff(counts[:, 1])[4:]  # steady state: from the 6th step on
    assert syncs.max() <= 1, syncs.tolist()
    assert (episodes > 0).sum() >= 2 and episodes.sum() >= NUM_ENVS, "episodes must end inside the counted window"
    assert syncs.sum() == len(syncs), "each step's one synchronization: which envs ended"
