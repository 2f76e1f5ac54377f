"""Labeled data generation on a real env: every transition written, labels equal to torch recomputations from the
stored states, physics blow-ups dropped. A SIGKILLed generator leaving only verified shards: test_resume_faults.py."""

from __future__ import annotations

import numpy as np
import pytest

from wam_isaac.data import DatasetWriter, iter_episodes, load_manifest, summarize, verify
from wam_isaac.labels.labeler import LabelerCfg
from wam_isaac.rollout.driver import RolloutDriver
from wam_isaac.rollout.policies import make_policy

pytestmark = pytest.mark.integration

TASK = "WAM-Cartpole"


@pytest.fixture(scope="module")
def env(make_env):
    with make_env(TASK, num_envs=8) as env:
        yield env


def generate(env, out, steps, policy="scripted", noise=0.3, on_step=None, stop=None, first_episode_index=0):
    policy = make_policy(policy, env, TASK, noise_std=noise)
    driver = RolloutDriver(
        env,
        policy,
        lambda specs: DatasetWriter(out, TASK, "test", specs, episodes_per_shard=5),
        LabelerCfg((1, 4)),
        first_episode_index=first_episode_index,
    )
    return driver.run(steps, on_step=on_step, stop=stop)


def test_stop_ends_the_run_like_a_spent_budget(env, tmp_path):
    calls = []

    def stop():
        calls.append(None)
        return len(calls) > 7

    stats = generate(env, tmp_path / "d", steps=60, stop=stop, first_episode_index=100)
    assert len(calls) == 8, "stop is checked once before every step, and the first true ends the loop"
    assert stats.transitions == 8 * 7
    episodes = [episode for _, episode in iter_episodes(tmp_path / "d")]
    assert sorted(episode.env_id for episode in episodes) == list(range(8))
    assert all(episode.attrs["budget_end"] == 1 and episode.num_samples == 7 for episode in episodes)
    assert all(episode.attrs["episode_index"] == 100 for episode in episodes)


def test_every_transition_is_written_and_labels_match_the_stored_states(env, tmp_path):
    stats = generate(env, tmp_path / "d", steps=60)
    summary = summarize(tmp_path / "d")
    assert summary["transitions"] == stats.transitions == 8 * 60
    assert verify(tmp_path / "d") == []
    checked = 0
    for _, episode in iter_episodes(tmp_path / "d"):
        d = episode.data
        q, qd = d["states/robot/joint_pos"], d["states/robot/joint_vel"]
        # the state after each step: the next stored state, and after the last step the final state s_T
        q_next = np.concatenate([q[1:], episode.final["states/robot/joint_pos"][None]])
        qd_next = np.concatenate([qd[1:], episode.final["states/robot/joint_vel"][None]])
        valid = d["labels/delta_1/valid"].astype(bool)
        # sample t's label is s_{t+1} - s_t, at every step of the episode, the last included
        for t in range(len(q)):
            assert valid[t], "every sample of an episode has a valid 1-step label"
            dq = q_next[t] - q[t]
            dq[1] = np.arctan2(np.sin(dq[1]), np.cos(dq[1]))
            np.testing.assert_allclose(d["labels/delta_1/robot/joint_pos"][t], dq, atol=1e-5)
            np.testing.assert_allclose(d["labels/delta_1/robot/joint_vel"][t], qd_next[t] - qd[t], atol=1e-4)
            checked += 1
        # the 4-step label at t is s_{t+1} - s_{t-3}, valid once 4 steps of the episode exist
        valid4 = d["labels/delta_4/valid"].astype(bool)
        assert not valid4[:3].any() and valid4[3:].all()
        for t in range(3, len(q)):
            np.testing.assert_allclose(d["labels/delta_4/robot/joint_vel"][t], qd_next[t] - qd[t - 3], atol=1e-4)
        # the rail is fixed: its pose never changes
        np.testing.assert_allclose(d["labels/delta_1/root_rotvec"], 0.0, atol=1e-6)
        assert episode.dr["robot/body_mass"].shape == (3,)
    assert checked == 8 * 60


def test_a_physics_blow_up_drops_the_episode_and_no_nan_is_written(env, tmp_path):
    robot = env.scene["robot"]

    def blow_up(step):
        if step == 20:
            position = robot.data.joint_pos.torch.clone()
            position[3, 1] = float("nan")
            robot.write_joint_position_to_sim_index(position=position)

    stats = generate(env, tmp_path / "d", steps=40, on_step=blow_up)
    assert stats.dropped_episodes == 1
    assert stats.transitions == 8 * 40 - stats.dropped_transitions
    assert stats.dropped_transitions >= 21, "env 3's episode held at least steps 0..20"
    manifest = load_manifest(tmp_path / "d")
    assert manifest["totals"]["dropped_episodes"] == 1
    for _, episode in iter_episodes(tmp_path / "d"):
        for key, value in episode.data.items():
            assert np.isfinite(value).all(), f"non-finite {key} in env {episode.env_id}"
    # env 3 kept running after its reset: it has a new episode starting after the blow-up
    assert any(ep.env_id == 3 for _, ep in iter_episodes(tmp_path / "d"))
