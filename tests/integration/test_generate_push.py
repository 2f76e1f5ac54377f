"""Scripted-expert data on WAM-Push-Cube: the expert succeeds, and the stored labels equal scipy/torch
recomputations from the stored states (cube displacement and rotation, tip -> cube -> goal relative poses, the
expert's action labels of DAgger)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from wam_isaac.data import DatasetWriter, iter_episodes, load_manifest, summarize
from wam_isaac.labels.labeler import labeler_cfg_for
from wam_isaac.rollout.driver import RolloutDriver
from wam_isaac.rollout.policies import load_expert, make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Push-Cube"


@pytest.fixture(scope="module")
def dataset(make_env, tmp_path_factory):
    out = tmp_path_factory.mktemp("push") / "d"
    with make_env(TASK, num_envs=8) as env:
        policy = make_policy("scripted", env, TASK)
        factory = lambda specs: DatasetWriter(out, TASK, "test", specs, episodes_per_shard=4)  # noqa: E731
        labeler_cfg = labeler_cfg_for(TASK, horizons=(1, 8))
        stats = RolloutDriver(env, policy, factory, labeler_cfg, expert=load_expert(TASK, env)).run(160)
    return out, stats


def test_all_transitions_written_and_the_expert_succeeds(dataset):
    out, stats = dataset
    summary = summarize(out)
    assert summary["transitions"] == stats.transitions == 8 * 160
    finished = [ep for _, ep in iter_episodes(out) if not ep.attrs["budget_end"]]
    assert len(finished) >= 8, "every env should finish at least one episode in 160 steps"
    assert np.mean([ep.success for ep in finished]) >= 0.9


def test_cube_labels_equal_recomputation_from_stored_states(dataset):
    out, _ = dataset
    checked = 0
    for _, episode in iter_episodes(out):
        d = episode.data
        pose = d["states/cube/root_pose"]  # (T, 7): position relative to the env origin, xyzw
        # the state after each step: the next stored state, and after the last step the final state s_T
        pose_next = np.concatenate([pose[1:], episode.final["states/cube/root_pose"][None]])
        root_index = _listed(out, "labels/delta_1/root_pos_w", "roots").index("cube")
        for k in (1, 8):
            valid = d[f"labels/delta_{k}/valid"].astype(bool)
            for t in range(k - 1, len(pose)):
                assert valid[t]
                before, after = pose[t + 1 - k], pose_next[t]
                r0 = Rotation.from_quat(before[3:])
                np.testing.assert_allclose(
                    d[f"labels/delta_{k}/root_pos_w"][t, root_index], after[:3] - before[:3], atol=1e-5
                )
                np.testing.assert_allclose(
                    d[f"labels/delta_{k}/root_pos_b"][t, root_index], r0.inv().apply(after[:3] - before[:3]), atol=1e-5
                )
                np.testing.assert_allclose(
                    d[f"labels/delta_{k}/root_rotvec"][t, root_index],
                    (r0.inv() * Rotation.from_quat(after[3:])).as_rotvec(),
                    atol=1e-4,
                )
                checked += 1
    assert checked > 1100


def _listed(out, key: str, what: str) -> list[str]:
    """The names a key's manifest description lists after ``<what>:`` (its entries along the trailing axis)."""
    return load_manifest(out)["keys"][key]["description"].split(f"{what}: ")[1].split(", ")


def test_contact_labels_weigh_the_resting_cube_and_see_the_pusher_push(dataset):
    """The contact sensor's bodies are listed in the manifest in storage order; a resting cube untouched by the tip
    presses on the table with m g (m: the episode's randomized cube mass); whenever the tip touches the cube, the cube
    moves; the tip starts every episode away from the cube."""
    out, _ = dataset
    pusher, cube = (_listed(out, f"labels/contact/contact_forces/{key}", "bodies") for key in ("flag", "force"))
    assert pusher == cube == ["pusher", "Cube"]
    resting, pushed = [], []
    for _, episode in iter_episodes(out):
        d = episode.data
        force, flag = d["labels/contact/contact_forces/force"], d["labels/contact/contact_forces/flag"]
        np.testing.assert_array_equal(flag, (force > 0.1).astype(np.float32))  # Push-Cube's threshold
        assert flag[0, 0] == 0
        weight = float(episode.dr["cube/body_mass"][0]) * 9.81
        vel_after = np.concatenate([d["states/cube/root_vel"][1:], episode.final["states/cube/root_vel"][None]])
        speed_after = np.linalg.norm(vel_after, axis=-1)  # labels at t: after the step (s_T after the last)
        speed_before = np.linalg.norm(d["states/cube/root_vel"], axis=-1)
        # at rest through the step (a cube that just stopped may still rock on an edge)
        for t in np.flatnonzero((flag[:, 0] == 0) & (speed_after < 0.01) & (speed_before < 0.01))[1:]:
            resting.append(force[t, 1] / weight)
        moved = np.linalg.norm(d["labels/delta_1/root_pos_w"][:, 2], axis=-1) > 1e-4
        pushed.extend(moved[flag[:, 0] == 1])
    assert len(resting) > 100
    np.testing.assert_allclose(resting, 1.0, rtol=0.03)
    assert len(pushed) > 0.05 * 8 * 160, "the expert pushes the cube for a good part of its episodes"
    assert np.mean(pushed) > 0.95


def test_tip_to_cube_labels_match_forward_kinematics_of_the_stored_joints(dataset):
    from wam_isaac_assets.builders import pusher as geometry

    out, _ = dataset
    lengths = np.array([geometry.UPPER_ARM_LENGTH, geometry.FOREARM_LENGTH, geometry.TOOL_LENGTH])
    for _, episode in iter_episodes(out):
        d = episode.data
        # labels at t describe the state after the step: the stored state at t + 1, the final state s_T after the last
        joints, cube = (
            np.concatenate([d[key][1:], episode.final[key][None]])
            for key in ("states/robot/joint_pos", "states/cube/root_pose")
        )
        angles = np.cumsum(joints, axis=-1)  # SCARA: every joint turns about z
        tip = np.stack([(lengths * np.cos(angles)).sum(-1), (lengths * np.sin(angles)).sum(-1)], -1)
        yaw = angles[:, -1]
        rel = cube[:, :2] - tip
        expected = np.stack(
            [np.cos(yaw) * rel[:, 0] + np.sin(yaw) * rel[:, 1], -np.sin(yaw) * rel[:, 0] + np.cos(yaw) * rel[:, 1]], -1
        )
        np.testing.assert_allclose(d["labels/manipulation/object_pos_in_ee"][:, :2], expected, atol=1e-3)
        # the cube's penetration into the table top, from its stored pose: the lowest of its corner spheres
        from wam_isaac_assets.builders import cube as cube_geometry

        centers = np.array(cube_geometry.corner_centers())
        lowest = (
            np.array([(c[2] + Rotation.from_quat(c[3:]).apply(centers)[:, 2]).min() for c in cube])
            - cube_geometry.CORNER_RADIUS
        )
        depth = np.maximum(geometry.TABLE_TOP_Z - lowest, 0.0)
        np.testing.assert_allclose(d["labels/penetration/cube"].max(-1), depth, atol=1e-4)


def test_world_model_and_instruction_groups_hold_the_simulator_state_and_the_goal(dataset):
    """What a WAM reads: ``obs/world_model/*`` equals the stored simulator state (env frame), the quaternion on the
    w >= 0 hemisphere; ``obs/instruction/goal`` is the episode's goal, constant over the episode."""
    out, _ = dataset
    for _, episode in iter_episodes(out):
        d = episode.data
        pose, vel = d["states/cube/root_pose"], d["states/cube/root_vel"]
        np.testing.assert_allclose(d["obs/world_model/cube_pos"], pose[:, :3], atol=1e-6)
        sign = np.where(pose[:, 6:7] < 0, -1.0, 1.0)
        np.testing.assert_allclose(d["obs/world_model/cube_quat"], sign * pose[:, 3:], atol=1e-6)
        assert (d["obs/world_model/cube_quat"][:, 3] >= 0).all()
        np.testing.assert_allclose(d["obs/world_model/cube_lin_vel"], vel[:, :3], atol=1e-6)
        np.testing.assert_allclose(d["obs/world_model/cube_ang_vel"], vel[:, 3:], atol=1e-6)
        np.testing.assert_allclose(d["obs/world_model/joint_pos"], d["states/robot/joint_pos"], atol=1e-6)
        np.testing.assert_allclose(d["obs/world_model/joint_vel"], d["states/robot/joint_vel"], atol=1e-6)
        goal = d["obs/instruction/goal"]
        assert (goal == goal[0]).all(), "the goal changes only at resets"
        assert 0.46 <= goal[0, 0] <= 0.56 and -0.15 <= goal[0, 1] <= 0.15


def test_expert_labels_are_the_experts_action_on_each_recorded_state(dataset):
    """``expert_actions`` at ``t`` is the expert's action recomputed from the state stored at ``t`` (the tip from the
    exact critic observation, the cube pose, the goal, the episode's actuator strength), the last step of every
    episode included (computed before the reset); here the behaviour policy is the noise-free expert itself, so the
    executed actions equal the labels."""
    import torch

    from wam_isaac_tasks.push_cube.expert import PushCubeExpert, scara_ik

    out, _ = dataset
    assert load_manifest(out)["keys"]["expert_actions"]["shape"] == [3]
    ended = 0
    for _, episode in iter_episodes(out):
        d = {key: torch.from_numpy(np.asarray(value, dtype=np.float64)) for key, value in episode.data.items()}
        base = d["states/robot/root_pose"][:, :2]
        tip = d["obs/critic"][:, 6:8] - base  # critic: joint_pos_rel (3), joint_vel (3), tip_pos (2), ...
        cube = d["states/cube/root_pose"][:, :2] - base
        goal = d["obs/instruction/goal"][:, :2] - base
        default = d["states/robot/joint_pos"] - d["obs/critic"][:, 0:3]
        joints = scara_ik(PushCubeExpert.tip_target(tip, cube, goal))
        expected = (joints - default) / float(episode.dr["action/arm/strength"])
        np.testing.assert_allclose(episode.data["expert_actions"], expected.numpy(), atol=2e-4)
        np.testing.assert_array_equal(episode.data["expert_actions"], episode.data["actions"])
        ended += not episode.attrs["budget_end"]
    assert ended >= 8, "episodes whose last step precedes a reset"
