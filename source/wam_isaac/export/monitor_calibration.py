"""Simulated rollouts seen as the world model sees them, and the surprise monitor's calibration on them.

A rollout of the task's env under a behaviour policy is recorded step by step with the closed-loop window rules
(:class:`wam_isaac.evaluation.closed_loop.HistoryWindow`): for every step ``t`` and env, the window of the last ``H``
states, instructions and previous actions, the action sent, the next state measured and whether the episode ended.
The world model's parity check runs on these windows; the monitor's threshold is calibrated on the first half of the
envs and its false-alarm rate measured on the other half (held-out rollouts: other DR draws, other episodes).

The threshold is the strictest of the calibration envs' own ``1 - false_alarm_rate`` quantiles, not the quantile of
the pooled steps: each env keeps its randomized physics for the whole rollout, so its statistic is shifted as a whole,
and a pooled quantile over a few envs is set by the ones that happened to be drawn (measured on WAM-Push-Cube, 16
envs x 300 steps, two world models, four 4-env calibrations each: a pooled 99th percentile let 0.4-3.0 % of the
held-out envs' steps alarm, the strictest env's 0.0-1.4 %; with 8 calibration envs 0.0-1.0 %).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..deploy.rotations import state_difference
from ..deploy.surprise import term_scores, windowed_mean

WINDOW_STEPS = 5
"""Steps averaged by the monitor's alarm statistic."""
FALSE_ALARM_RATE = 0.01
"""Default target false-alarm rate per step under the training conditions."""


@dataclass
class WorldRecording:
    """A rollout as the world model sees it, arrays of shape (T, N, ...)."""

    states: np.ndarray
    """Windows of states, (T, N, H, S)."""
    instruction: np.ndarray
    """Windows of instructions, (T, N, H, I)."""
    prev_actions: np.ndarray
    """Windows of previous actions, (T, N, H, A)."""
    actions: np.ndarray
    """Actions sent at the window's last step, (T, N, A)."""
    next_states: np.ndarray
    """States measured after the step (the next episode's first state where ``dones``), (T, N, S)."""
    dones: np.ndarray
    """Episode ended at the step, (T, N)."""

    def flat_inputs(self, names: list[str]) -> dict[str, np.ndarray]:
        """The world-model graph's inputs for every (t, n), batch T * N (memory zeros: a window starts fresh)."""
        t, n, h = self.states.shape[:3]
        feed = {
            "states": self.states.reshape(t * n, h, -1),
            "instruction": self.instruction.reshape(t * n, h, -1),
            "prev_actions": self.prev_actions.reshape(t * n, h, -1),
            "action": self.actions.reshape(t * n, -1),
        }
        return {name: feed[name] for name in names if name in feed}


Behaviour = Callable[[dict, object], torch.Tensor]
"""``behaviour(obs, window) -> actions (N, A)``: the actions sent to the env, from its observations or the window."""


@torch.inference_mode()  # as the env is stepped elsewhere (rsl-rl, the export's recording)
def record_world(
    env, schema, history: int, behaviour: Behaviour, steps: int, seed: int = 0, on_done=None
) -> WorldRecording:
    """Step ``env`` ``steps`` times under ``behaviour`` from a reset, recording windows as the closed loop does;
    ``on_done(done)`` is called after every step (a recurrent behaviour resets its memory there)."""
    from ..evaluation.closed_loop import HistoryWindow, observed

    n, device = env.num_envs, env.device
    obs, _ = env.reset(seed=seed)
    window = HistoryWindow(n, history, schema, device)
    window.reset(torch.arange(n, device=device), *observed(obs, schema, n))
    columns: dict[str, list] = {name: [] for name in WorldRecording.__dataclass_fields__}
    for _ in range(steps):
        actions = behaviour(obs, window).clone()
        obs, _, terminated, truncated, _ = env.step(actions)
        done = terminated | truncated
        if on_done is not None:
            on_done(done)
        states, instruction = observed(obs, schema, n)
        for name, value in (
            ("states", window.states),
            ("instruction", window.instruction),
            ("prev_actions", window.prev_actions),
            ("actions", actions),
            ("next_states", states),
            ("dones", done),
        ):
            columns[name].append(value.cpu().numpy().copy())
        window.push(states, instruction, actions)
        if done.any():
            window.reset(done.nonzero()[:, 0], states, instruction)
    arrays = {name: np.stack(values) for name, values in columns.items()}
    arrays = {name: value if name == "dones" else value.astype(np.float32) for name, value in arrays.items()}
    return WorldRecording(**arrays)


def recording_scores(recording: WorldRecording, delta_mean, delta_std, terms: list[dict]) -> np.ndarray:
    """Per-term scores (T, N, K) of the predictions made at every step (meaningless where the episode ended)."""
    measured = state_difference(recording.states[:, :, -1], recording.next_states, terms)
    return term_scores(measured, delta_mean, delta_std, terms)


def alarm_statistic(recording: WorldRecording, scores: np.ndarray, scales: np.ndarray, window_steps: int) -> np.ndarray:
    """The monitor's alarm statistic (T, N) at every step, as :class:`~wam_isaac.deploy.SurpriseMonitor` computes it
    streaming: step ``t + 1`` judges the prediction made at ``t`` unless the episode ended at ``t``; NaN where nothing
    was judged yet in the episode."""
    envs = recording.dones.shape[1]
    surprise = (scores / scales).max(-1)
    judged_valid = np.concatenate((np.zeros((1, envs), bool), ~recording.dones[:-1]))
    judged = np.concatenate((np.full((1, envs), np.nan), surprise[:-1]))
    starts = np.concatenate((np.ones((1, envs), bool), recording.dones[:-1]))
    return windowed_mean(judged, judged_valid, starts, window_steps)


def env_threshold(statistic: np.ndarray, quantile: float) -> float:
    """The largest of the envs' own ``quantile`` quantiles of ``statistic`` (T, N) (NaN: not judged), so that the
    alarm rate is at most ``1 - quantile`` in every one of these envs."""
    per_env = [column[~np.isnan(column)] for column in statistic.T]
    return float(max(np.quantile(values, quantile, method="higher") for values in per_env if values.size))


def calibrate_monitor(
    recording: WorldRecording,
    delta_mean: np.ndarray,
    delta_std: np.ndarray,
    terms: list[dict],
    false_alarm_rate: float = FALSE_ALARM_RATE,
    window_steps: int = WINDOW_STEPS,
) -> dict:
    """The monitor's calibration (metadata ``world_model.monitor``) from the world model's predictions on the
    recording, ``delta_mean`` and ``delta_std`` of shape (T, N, D).

    The statistic at step ``t + 1`` judges the prediction made at ``t`` (valid where the episode did not end at
    ``t``); envs ``[0, N/2)`` set the per-term scales (median score) and the threshold (the ``1 - false_alarm_rate``
    quantile of the statistic in each env, the largest of them: :func:`env_threshold`), envs ``[N/2, N)`` measure the
    false-alarm rate on held-out rollouts.
    """
    steps, envs = recording.dones.shape
    if envs < 2:
        raise ValueError("calibration needs at least 2 envs (half calibrate, half measure the false-alarm rate)")
    scores = recording_scores(recording, delta_mean, delta_std, terms)
    half = envs // 2
    scales = np.maximum(np.median(scores[:, :half][~recording.dones[:, :half]], axis=0), 1.0e-6)
    statistic = alarm_statistic(recording, scores, scales, window_steps)
    mine, held_out = statistic[:, :half], statistic[:, half:]
    mine, held_out = mine[~np.isnan(mine)], held_out[~np.isnan(held_out)]
    threshold = env_threshold(statistic[:, :half], 1.0 - false_alarm_rate)
    return {
        "statistic": "mean over the last window_steps steps of max_k(term score_k / term_scales_k); term score = "
        "sqrt(mean(((measured change - delta_mean) / delta_std)^2)) over the term's entries",
        "window_steps": int(window_steps),
        "threshold_rule": "max over the calibration envs of each env's own (1 - false_alarm_rate_target) quantile",
        "term_scales": {term["name"]: float(scale) for term, scale in zip(terms, scales, strict=True)},
        "threshold": threshold,
        "false_alarm_rate_target": float(false_alarm_rate),
        "false_alarm_rate_calibration": float((mine > threshold).mean()),
        "false_alarm_rate_held_out": float((held_out > threshold).mean()),
        "calibration_steps": int(mine.size),
        "held_out_steps": int(held_out.size),
        "envs": int(envs),
        "steps_per_env": int(steps),
    }
