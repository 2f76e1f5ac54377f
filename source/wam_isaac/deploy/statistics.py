"""The surprise monitor's statistics, as numpy functions shared by the runtime (streaming, one step at a time) and
the calibration at export (in batch over a recording), so both compute the same numbers.

Two statistics judge the measured change ``d`` of the state against the world model's one-step prediction (mean
``m``, standard deviation ``s``, per entry of the change vector):

- **jump** (two-sided, short memory): per state term ``sqrt(mean(((d - m) / s)^2))`` over the term's entries,
  divided by the term's calibration scale; the largest over terms; averaged over the last few steps of the episode.
  It sees what the model could not have predicted from the window: a kick, a collision, a sensor jump.
- **stall** (one-sided, whole episode): per state term the log likelihood ratio of "the term moved ``rho`` times as
  predicted" against the model, ``sum(((d - m)^2 - (d - rho m)^2) / (2 s^2))`` over its entries, accumulated by a
  CUSUM from the episode's start (``C_t = max(0, C_{t-1} + llr_t)``), divided by the term's calibration scale; the
  largest over terms. Its per-step drift is ``-sum(m^2 (1 - rho^2)) / (2 s^2)`` when the world moves as predicted and
  positive when it moves less, so it builds up only while the world keeps moving less than predicted (a load the
  robot can barely move, a joint that lags its targets), which a window-adapted model hides from the jump statistic
  by predicting the slow motion it has just seen, one step at a time.
"""

from __future__ import annotations

import numpy as np


def term_scores(measured: np.ndarray, mean: np.ndarray, std: np.ndarray, terms: list[dict]) -> np.ndarray:
    """Per-term normalized error ``sqrt(mean(((measured - mean) / std)^2))`` of changes (..., D) -> (..., K)."""
    z = (measured - mean) / std
    return np.stack([np.sqrt(np.mean(z[..., t["delta_slice"][0] : t["delta_slice"][1]] ** 2, -1)) for t in terms], -1)


def stall_llr(measured: np.ndarray, mean: np.ndarray, std: np.ndarray, terms: list[dict], rho: float) -> np.ndarray:
    """Per-term log likelihood ratio (..., K) of "the change is ``rho * mean``" against "it is ``mean``" (Gaussian
    with the predicted ``std``), changes (..., D): positive when the term moved less than predicted."""
    llr = ((measured - mean) ** 2 - (measured - rho * mean) ** 2) / (2.0 * std**2)
    return np.stack([llr[..., t["delta_slice"][0] : t["delta_slice"][1]].sum(-1) for t in terms], -1)


def windowed_mean(values: np.ndarray, valid: np.ndarray, starts: np.ndarray, window: int) -> np.ndarray:
    """The jump statistic along time (T, N): the mean of ``values`` over the last ``window`` valid steps since the
    episode's start (``starts[t, n]``: a new episode begins at ``t``); NaN where no step is valid yet."""
    steps, envs = values.shape
    out = np.full((steps, envs), np.nan)
    for n in range(envs):
        recent: list[float] = []
        for t in range(steps):
            if starts[t, n]:
                recent = []
            if valid[t, n]:
                recent = (recent + [float(values[t, n])])[-window:]
            if recent:
                out[t, n] = np.mean(recent)
    return out


def episode_cusum(values: np.ndarray, valid: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """One-sided CUSUM (T, N, ...) of ``values`` (T, N, ...) from each episode's start: ``C = max(0, C + value)`` at
    every valid step, 0 at a start; NaN until the episode's first valid step."""
    out = np.full(values.shape, np.nan)
    total = np.zeros(values.shape[1:])
    seen = np.zeros(values.shape[1], bool)
    for t in range(values.shape[0]):
        total[starts[t]] = 0.0
        seen[starts[t]] = False
        total[valid[t]] = np.maximum(0.0, total[valid[t]] + values[t, valid[t]])
        seen |= valid[t]
        out[t, seen] = total[seen]
    return out
