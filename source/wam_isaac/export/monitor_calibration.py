"""Simulated rollouts seen as the world model sees them, and the surprise monitor's calibration on them.

A rollout of the task's env under a behaviour policy is recorded step by step with the closed-loop window rules
(:class:`wam_isaac.evaluation.closed_loop.HistoryWindow`): for every step ``t`` and env, the window of the last ``H``
states, instructions and previous actions, the action sent, the next state measured and whether the episode ended.
The world model's parity check runs on these windows; the monitor's threshold is calibrated on the first half of the
envs and its false-alarm rate measured on the other half (held-out rollouts: other DR draws, other episodes).

A threshold is set per calibration env, not on the pooled steps: each env keeps its randomized physics for the whole
rollout, so its statistic is shifted as a whole, and a pooled quantile over a few envs is set by the ones that happened
to be drawn (the README's "Sim-to-real export" section has the measured false-alarm rates of both rules). It is the
strictest env's own quantile among those that are not outliers (:func:`robust_threshold`): under the plain maximum,
one env with a few very large errors can set the threshold far above every other env's and blind the monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from ..deploy.rotations import state_difference
from ..deploy.statistics import episode_cusum, stall_llr, term_scores, windowed_mean

WINDOW_STEPS = 5
"""Steps averaged by the monitor's alarm statistic."""
FALSE_ALARM_RATE = 0.01
"""Default target false-alarm rate per step under the training conditions (jump and stall alarms together)."""
STALL_RHO = 0.0
"""The stall statistic's alternative: the state term moves ``STALL_RHO`` times as predicted (0: it stays put)."""
STALL_TERMS = ("joint_pos",)
"""State terms the stall statistic watches (those the world model has): the robot's joint positions, which lag the
position targets while the robot pushes something heavier than it was trained with."""
STALL_DRIFT = 0.0
"""Subtracted from the stall log likelihood ratio at every step before it is accumulated (the CUSUM's reference
value): evidence below it per step never builds up."""
OUTLIER_FENCE = 3.0
"""Calibration envs whose own quantile lies above ``Q3 + OUTLIER_FENCE * IQR`` of all envs' (in log) are outliers
that do not set a threshold (:func:`robust_threshold`)."""
SCALE_FLOOR = 1.0e-6
"""Smallest per-term calibration scale (a term that never moved in calibration)."""


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


def judged_steps(recording: WorldRecording) -> tuple[np.ndarray, np.ndarray]:
    """``(valid, starts)`` (T, N) as the streaming monitor sees them: step ``t + 1`` judges the prediction made at
    ``t`` unless the episode ended at ``t``; an episode starts at 0 and after every end."""
    envs = recording.dones.shape[1]
    valid = np.concatenate((np.zeros((1, envs), bool), ~recording.dones[:-1]))
    starts = np.concatenate((np.ones((1, envs), bool), recording.dones[:-1]))
    return valid, starts


def shifted(values: np.ndarray) -> np.ndarray:
    """Per-step values (T, N, ...) of the predictions made at ``t``, moved to the step that judges them (``t + 1``)."""
    return np.concatenate((np.full_like(values[:1], np.nan), values[:-1]))


def alarm_statistic(recording: WorldRecording, scores: np.ndarray, scales: np.ndarray, window_steps: int) -> np.ndarray:
    """The jump statistic (T, N) at every step, as :class:`~wam_isaac.deploy.SurpriseMonitor` computes it
    streaming; NaN where nothing was judged yet in the episode."""
    valid, starts = judged_steps(recording)
    return windowed_mean(shifted((scores / scales).max(-1)), valid, starts, window_steps)


def stall_cusums(recording: WorldRecording, llr: np.ndarray) -> np.ndarray:
    """Per-term CUSUMs (T, N, K) of the stall log likelihood ratios ``llr`` (T, N, K) of the predictions made at
    every step, as the streaming monitor accumulates them; NaN where nothing was judged yet in the episode."""
    valid, starts = judged_steps(recording)
    return episode_cusum(np.nan_to_num(shifted(llr)), valid, starts)


def env_quantiles(statistic: np.ndarray, quantile: float) -> np.ndarray:
    """Each env's own ``quantile`` quantile of ``statistic`` (T, N) over its judged steps (NaN: not judged)."""
    per_env = [column[~np.isnan(column)] for column in statistic.T]
    return np.array([np.quantile(values, quantile, method="higher") for values in per_env if values.size])


def env_threshold(statistic: np.ndarray, quantile: float) -> float:
    """The largest of the envs' own ``quantile`` quantiles of ``statistic`` (T, N) (NaN: not judged), so that the
    alarm rate is at most ``1 - quantile`` in every one of these envs (one outlier env sets it)."""
    return float(env_quantiles(statistic, quantile).max())


def robust_threshold(statistic: np.ndarray, quantile: float, fence: float = OUTLIER_FENCE) -> float:
    """The largest of the envs' own ``quantile`` quantiles of ``statistic`` (T, N) that is not an outlier among
    them: above ``Q3 + fence * (Q3 - Q1)`` of their logarithms (Tukey's far-out fence; the quartiles are robust, so
    one env whose statistic is far above the others', from a rollout with a few very large errors, cannot set the
    threshold, while the ordinary spread of randomized envs, a few times between the lowest and the highest, is
    kept)."""
    per_env = env_quantiles(statistic, quantile)
    logs = np.log(np.maximum(per_env, SCALE_FLOOR))
    q1, q3 = np.quantile(logs, [0.25, 0.75])
    return float(per_env[logs <= q3 + fence * (q3 - q1)].max())


def calibrate_monitor(
    recording: WorldRecording,
    delta_mean: np.ndarray,
    delta_std: np.ndarray,
    terms: list[dict],
    false_alarm_rate: float = FALSE_ALARM_RATE,
    window_steps: int = WINDOW_STEPS,
    stall_rho: float | None = STALL_RHO,
    fence: float = OUTLIER_FENCE,
    stall_terms: tuple[str, ...] = STALL_TERMS,
    stall_drift: float | None = None,
) -> dict:
    """The monitor's calibration (metadata ``world_model.monitor``) from the world model's predictions on the
    recording, ``delta_mean`` and ``delta_std`` of shape (T, N, D).

    The statistics at step ``t + 1`` judge the prediction made at ``t`` (valid where the episode did not end at
    ``t``); envs ``[0, N/2)`` set the per-term scales (the jump score's median, the stall CUSUM's mean over judged
    steps) and the thresholds (:func:`robust_threshold` of each env's ``1 - false_alarm_rate / 2`` quantile, so that
    the two alarms together stay near the target), envs ``[N/2, N)`` measure the false-alarm rates on held-out
    rollouts. ``stall_rho=None`` calibrates the jump statistic alone (at ``1 - false_alarm_rate``).
    """
    stall_drift = STALL_DRIFT if stall_drift is None else stall_drift
    steps, envs = recording.dones.shape
    if envs < 2:
        raise ValueError("calibration needs at least 2 envs (half calibrate, half measure the false-alarm rate)")
    measured = state_difference(recording.states[:, :, -1], recording.next_states, terms)
    scores = term_scores(measured, delta_mean, delta_std, terms)
    half = envs // 2
    scales = np.maximum(np.median(scores[:, :half][~recording.dones[:, :half]], axis=0), SCALE_FLOOR)
    statistic = alarm_statistic(recording, scores, scales, window_steps)
    watched = [term for term in terms if term["name"] in stall_terms] if stall_rho is not None else []
    quantile = 1.0 - (false_alarm_rate / 2 if watched else false_alarm_rate)
    threshold = robust_threshold(statistic[:, :half], quantile, fence)
    jump = np.where(np.isnan(statistic), np.nan, statistic > threshold)
    monitor = {
        "statistic": "jump: mean over the last window_steps steps of max_k(term score_k / term_scales_k); term score = "
        "sqrt(mean(((measured change - delta_mean) / delta_std)^2)) over the term's entries",
        "window_steps": int(window_steps),
        "threshold_rule": f"the largest of the calibration envs' own {quantile:g} quantiles that is not above "
        f"Q3 + {fence:g} IQR of their logarithms (an outlier env does not set it)",
        "term_scales": {term["name"]: float(scale) for term, scale in zip(terms, scales, strict=True)},
        "threshold": threshold,
        "calibration_env_quantiles": [float(q) for q in env_quantiles(statistic[:, :half], quantile)],
    }
    alarms = jump
    if watched:
        cusums = stall_cusums(recording, stall_llr(measured, delta_mean, delta_std, watched, stall_rho) - stall_drift)
        mine = cusums[:, :half].reshape(-1, len(watched))
        stall_scales = np.maximum(np.nanmean(mine, axis=0), SCALE_FLOOR)
        stall_statistic = (cusums / stall_scales).max(-1)
        stall_threshold = robust_threshold(stall_statistic[:, :half], quantile, fence)
        stall = np.where(np.isnan(stall_statistic), np.nan, stall_statistic > stall_threshold)
        alarms = np.where(np.isnan(jump), np.nan, np.maximum(jump, np.nan_to_num(stall)))
        monitor["stall"] = {
            "statistic": "max_k(CUSUM_k / term_scales_k) since the episode's start, CUSUM_k = max(0, CUSUM_k + llr_k) "
            "at every judged step, llr_k = sum(((measured change - delta_mean)^2 - (measured change - rho * "
            "delta_mean)^2) / (2 delta_std^2)) over the term's entries",
            "rho": float(stall_rho),
            "drift": float(stall_drift),
            "term_scales": {term["name"]: float(scale) for term, scale in zip(watched, stall_scales, strict=True)},
            "threshold": stall_threshold,
            "calibration_env_quantiles": [float(q) for q in env_quantiles(stall_statistic[:, :half], quantile)],
            "false_alarm_rate_held_out": _rate(stall[:, half:]),
        }
        monitor["false_alarm_rate_held_out_jump"] = _rate(jump[:, half:])
    return {
        **monitor,
        "false_alarm_rate_target": float(false_alarm_rate),
        "false_alarm_rate_calibration": _rate(alarms[:, :half]),
        "false_alarm_rate_held_out": _rate(alarms[:, half:]),
        "calibration_steps": int((~np.isnan(statistic[:, :half])).sum()),
        "held_out_steps": int((~np.isnan(statistic[:, half:])).sum()),
        "envs": int(envs),
        "steps_per_env": int(steps),
    }


def _rate(alarms: np.ndarray) -> float:
    """Share of judged steps (non-NaN) with the alarm on."""
    return float(np.nanmean(alarms)) if (~np.isnan(alarms)).any() else 0.0
