"""The surprise monitor (numpy + onnxruntime) against its calibration (the same statistic computed in batch on a
recording made with the closed-loop window rules), the numpy rotation math against the model's torch StateSpace,
and the monitor's reaction to a jump in the measured state. No simulator: the trajectories come from a scripted fake
env and from the world model's own predictions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam_isaac.deploy import BadObservation, SurpriseMonitor
from wam_isaac.deploy.rotations import state_difference
from wam_isaac.deploy.statistics import stall_llr
from wam_isaac.export.monitor_calibration import (
    alarm_statistic,
    calibrate_monitor,
    env_threshold,
    record_world,
    recording_scores,
    robust_threshold,
    stall_cusums,
)
from wam_isaac.export.validate import session
from wam_isaac.export.world_model_onnx import export_world_model_onnx, state_layout
from wam_isaac.models import WamSchema, build_model, model_cfg
from wam_isaac.models.state_space import StateSpace

SCHEMA = WamSchema(
    state_keys={"obs/world_model/joint_pos": [2], "obs/world_model/cube_quat": [4]},
    instruction_keys={"obs/instruction/goal": [2]},
    action_shape=[2],
)
HISTORY, ENVS, STEPS = 3, 4, 24
DONES = {(7, 0), (15, 0), (10, 2), (20, 3)}
"""(step, env) where an episode ends: the state after it is the next episode's first."""


def unit_quaternions(rng, shape) -> np.ndarray:
    q = rng.standard_normal((*shape, 4))
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


class ScriptedEnv:
    """Replays fixed states and instructions in the observation layout of a manager-based env."""

    def __init__(self, states: np.ndarray, goals: np.ndarray):
        self.states, self.goals, self.num_envs, self.device, self.t = states, goals, ENVS, "cpu", 0

    def observation(self) -> dict:
        s = torch.from_numpy(self.states[self.t])
        return {
            "world_model": {"joint_pos": s[:, :2], "cube_quat": s[:, 2:]},
            "instruction": {"goal": torch.from_numpy(self.goals[self.t])},
        }

    def reset(self, seed=None):
        self.t = 0
        return self.observation(), {}

    def step(self, actions):
        self.t += 1
        done = torch.tensor([(self.t - 1, i) in DONES for i in range(ENVS)])
        return self.observation(), torch.zeros(ENVS), done, torch.zeros(ENVS, dtype=torch.bool), {}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    cfg = model_cfg("gru", head_hidden=16)
    cfg.trunk.hidden = 16
    model = build_model(SCHEMA, cfg).eval()
    path = tmp_path_factory.mktemp("wm") / "world_model.onnx"
    graph, entry = export_world_model_onnx(model, path, HISTORY)
    return graph, entry, path


def record(rng):
    states = np.concatenate((rng.normal(0, 0.3, (STEPS + 1, ENVS, 2)), unit_quaternions(rng, (STEPS + 1, ENVS))), -1)
    goals = rng.normal(0, 1, (STEPS + 1, ENVS, 2))
    actions = torch.from_numpy(rng.normal(0, 1, (STEPS, ENVS, 2)).astype(np.float32))
    env = ScriptedEnv(states.astype(np.float32), goals.astype(np.float32))
    recording = record_world(env, SCHEMA, HISTORY, lambda obs, window: actions[env.t], STEPS)
    return recording, states.astype(np.float32), goals.astype(np.float32), actions.numpy()


def predictions(path, graph, entry, recording):
    feed = recording.flat_inputs(graph.input_names)
    feed["memory_in"] = np.zeros((entry["recurrent"]["num_layers"], STEPS * ENVS, 16), np.float32)
    outputs = dict(zip(graph.output_names, session(path).run(None, feed), strict=True))
    return outputs["delta_mean"].reshape(STEPS, ENVS, -1), outputs["delta_std"].reshape(STEPS, ENVS, -1)


def block_of(graph, entry, calibration: dict) -> dict:
    return {
        **entry,
        "state": {"size": SCHEMA.state_dim, "terms": state_layout(graph)},
        "instruction": {"size": 2, "terms": [{"name": "goal", "key": "obs/instruction/goal", "size": 2}]},
        "action": {"size": 2},
        "monitor": calibration,
    }


def test_numpy_state_difference_matches_the_model_state_space(exported):
    graph, _, _ = exported
    rng = np.random.default_rng(0)
    start = np.concatenate((rng.normal(size=(50, 2)), unit_quaternions(rng, (50,))), -1)
    end = np.concatenate((rng.normal(size=(50, 2)), unit_quaternions(rng, (50,))), -1)
    end[:10, 2:] *= -1.0  # the same rotation stored with the other sign: no jump in the change
    want = StateSpace(SCHEMA).difference(torch.from_numpy(start), torch.from_numpy(end)).numpy()
    np.testing.assert_allclose(state_difference(start, end, state_layout(graph)), want, atol=1e-9)


def test_recording_follows_the_closed_loop_window_rules():
    recording, states, goals, actions = record(np.random.default_rng(1))
    # env 0 ended at step 7: at step 8 its window holds copies of its new first state, previous actions 0
    np.testing.assert_array_equal(recording.states[8, 0], np.repeat(states[8, 0][None], HISTORY, 0))
    np.testing.assert_array_equal(recording.prev_actions[8, 0], 0.0)
    # env 1 never ended: its window at step 5 is steps 3-5, previous actions a_2..a_4
    np.testing.assert_array_equal(recording.states[5, 1], states[3:6, 1])
    np.testing.assert_array_equal(recording.prev_actions[5, 1], actions[2:5, 1])
    np.testing.assert_array_equal(recording.next_states[5, 1], states[6, 1])
    assert {tuple(x) for x in np.argwhere(recording.dones)} == DONES


def test_monitor_streams_the_statistic_it_was_calibrated_on(exported):
    graph, entry, path = exported
    recording, states, goals, actions = record(np.random.default_rng(2))
    mean, std = predictions(path, graph, entry, recording)
    calibration = calibrate_monitor(recording, mean, std, state_layout(graph), false_alarm_rate=0.2, window_steps=3)
    terms = state_layout(graph)
    scales = np.array(list(calibration["term_scales"].values()))
    batch = alarm_statistic(recording, recording_scores(recording, mean, std, terms), scales, 3)
    stall = calibration["stall"]
    assert list(stall["term_scales"]) == ["joint_pos"] and stall["rho"] == 0.0
    measured = state_difference(recording.states[:, :, -1], recording.next_states, terms)
    llr = stall_llr(measured, mean, std, terms[:1], 0.0) - stall["drift"]
    stall_batch = (stall_cusums(recording, llr) / stall["term_scales"]["joint_pos"])[..., 0]
    monitor = SurpriseMonitor(block_of(graph, entry, calibration), session(path), num_envs=ENVS)
    streamed, stall_streamed, alarms = [], [], []
    for t in range(STEPS):
        surprise = monitor.step(
            {"joint_pos": states[t, :, :2], "cube_quat": states[t, :, 2:]}, actions[t], {"goal": goals[t]}
        )
        streamed.append(surprise.statistic)
        stall_streamed.append(surprise.stall_statistic)
        alarms.append(surprise.alarm)
        np.testing.assert_array_equal(surprise.alarm, surprise.jump_alarm | surprise.stall_alarm)
        done = np.array([(t, i) in DONES for i in range(ENVS)])
        if done.any():
            monitor.reset(done)
    streamed = np.array(streamed)
    np.testing.assert_allclose(streamed, batch, atol=1e-4, equal_nan=True)
    np.testing.assert_allclose(np.array(stall_streamed), stall_batch, rtol=1e-4, atol=1e-4, equal_nan=True)
    assert np.isnan(stall_batch[0]).all() and np.isnan(stall_batch[8, 0]) and not np.isnan(stall_batch[9, 0])
    # first step of every episode: nothing judged yet
    assert np.isnan(streamed[0]).all() and np.isnan(streamed[8, 0]) and np.isnan(streamed[11, 2])
    half = np.array(alarms)[:, : ENVS // 2][~np.isnan(streamed[:, : ENVS // 2])]
    assert half.mean() == pytest.approx(calibration["false_alarm_rate_calibration"])
    assert 0.0 < calibration["false_alarm_rate_calibration"] <= 0.2 + 1e-9


def test_monitor_is_quiet_on_its_own_predictions_and_fires_on_a_jump(exported):
    graph, entry, path = exported
    calibration = {"term_scales": {"joint_pos": 1.0, "cube_quat": 1.0}, "threshold": 2.0, "window_steps": 2}
    monitor = SurpriseMonitor(block_of(graph, entry, calibration), session(path), num_envs=1)
    rng = np.random.default_rng(3)
    state = np.concatenate((rng.normal(0, 0.3, 2), unit_quaternions(rng, ())))[None].astype(np.float32)
    goal = np.zeros((1, 2), np.float32)
    statistics, alarms = [], []
    for t in range(12):
        if t == 8:
            state = state.copy()
            state[0, :2] += 5.0  # pushed: the joints jump far outside the predicted band
        surprise = monitor.step({"joint_pos": state[:, :2], "cube_quat": state[:, 2:]}, np.ones((1, 2)), {"goal": goal})
        statistics.append(float(surprise.statistic[0]))
        alarms.append(bool(surprise.alarm[0]))
        # the world model's mean prediction becomes the next measured state: zero error
        _, mean, _ = monitor._predicted
        state = state_difference_apply(state, mean, graph)
    assert np.isnan(statistics[0]) and max(statistics[1:8]) < 1e-3 and not any(alarms[:8])
    assert alarms[8] and statistics[8] > 2.0
    with pytest.raises(BadObservation, match="missing \\['cube_quat'\\]"):
        monitor.step({"joint_pos": state[:, :2]}, np.ones((1, 2)), {"goal": goal})


def test_stall_accumulates_the_evidence_that_a_joint_stopped_moving(exported):
    """A joint that stays put while the model predicts it moving: the stall statistic is the running sum of the log
    likelihood ratio ``sum(m^2 / (2 s^2))`` of the predictions (computed here by hand), the jump statistic stays low
    (one step at a time the miss is small), and the stall alarm fires when the sum crosses its threshold."""
    graph, entry, path = exported
    calibration = {
        "term_scales": {"joint_pos": 1.0, "cube_quat": 1.0},
        "threshold": 1.0e9,
        "window_steps": 2,
        "stall": {"rho": 0.0, "drift": 0.0, "term_scales": {"joint_pos": 2.0}, "threshold": 1.0},
    }
    monitor = SurpriseMonitor(block_of(graph, entry, calibration), session(path), num_envs=1)
    rng = np.random.default_rng(5)
    state = np.concatenate((rng.normal(0, 0.3, 2), unit_quaternions(rng, ())))[None].astype(np.float32)
    goal, action = np.zeros((1, 2), np.float32), np.full((1, 2), 3.0, np.float32)
    expected, total, statistics, alarms = [], 0.0, [], []
    for t in range(40):
        surprise = monitor.step({"joint_pos": state[:, :2], "cube_quat": state[:, 2:]}, action, {"goal": goal})
        statistics.append(float(surprise.stall_statistic[0]))
        alarms.append(bool(surprise.stall_alarm[0]))
        assert not surprise.jump_alarm[0]
        expected.append(total / 2.0 if t else np.nan)
        _, mean, std = monitor._predicted
        total += float((mean[0, :2] ** 2 / (2 * std[0, :2] ** 2)).sum())  # joint_pos measured unchanged: d = 0
    np.testing.assert_allclose(statistics, expected, rtol=1e-4)
    first = next(t for t, value in enumerate(statistics) if value > 1.0)
    assert alarms == [False] * first + [True] * (40 - first) and first >= 2
    monitor.reset()
    surprise = monitor.step({"joint_pos": state[:, :2], "cube_quat": state[:, 2:]}, action, {"goal": goal})
    assert np.isnan(surprise.stall_statistic[0]) and not surprise.alarm[0]  # a new episode starts from nothing


def test_one_outlier_env_does_not_set_the_threshold():
    """Eight calibration envs whose statistics spread about 3x between them, and one with a few very large values:
    the fence keeps the ordinary spread (the threshold is the largest ordinary env's quantile), drops the outlier."""
    rng = np.random.default_rng(6)
    statistic = rng.gamma(4.0, 1.0, (300, 8)) * np.array([1.0, 1.3, 0.8, 2.0, 1.1, 0.9, 1.5, 1.2])
    statistic[:4] = np.nan
    ordinary = env_threshold(statistic, 0.99)
    assert robust_threshold(statistic, 0.99) == ordinary  # no outlier: the strictest env's own quantile
    statistic[100:110, 5] = 300.0  # one env, a few very large errors
    assert env_threshold(statistic, 0.99) == 300.0
    assert robust_threshold(statistic, 0.99) == ordinary


def test_threshold_holds_the_rate_in_every_calibration_env():
    """An env whose randomized physics shifts its statistic as a whole sets the threshold: a pooled quantile would let
    it alarm several times the target rate."""
    rng = np.random.default_rng(4)
    statistic = rng.normal(0.0, 1.0, (400, 4))
    statistic[:, 3] += 1.0
    statistic[:7, :] = np.nan  # episode starts: nothing judged yet
    threshold = env_threshold(statistic, 0.99)
    rates = [(column[~np.isnan(column)] > threshold).mean() for column in statistic.T]
    assert max(rates) <= 0.01 and rates[3] > 0.0
    assert threshold == np.quantile(statistic[7:, 3], 0.99, method="higher")
    pooled = np.quantile(statistic[7:].ravel(), 0.99, method="higher")
    assert (statistic[7:, 3] > pooled).mean() > 0.02


def state_difference_apply(state: np.ndarray, delta: np.ndarray, graph) -> np.ndarray:
    """``state`` moved by the physical change ``delta`` (the model's own composition)."""
    return graph.space.compose(torch.from_numpy(state), torch.from_numpy(delta)).numpy().astype(np.float32)
