"""The surprise monitor: ``world_model.onnx`` run beside the policy, flagging when the measured world leaves the band
the world model predicts (numpy and onnxruntime only).

Every control step ``t`` the monitor is given the measured state ``s_t`` (the ``world_model`` terms by name), the
instruction ``g_t`` and the action ``a_t`` sent. It compares ``s_t`` with the prediction it made at ``t - 1``: the
measured change ``d = change(s_{t-1}, s_t)`` (rotation vectors for quaternions, as the model predicts it) is
normalized by the predicted band, ``z = (d - mean) / std``; each state term gets the score ``sqrt(mean(z^2))`` over
its entries, divided by that term's median score on calibration data; the step's surprise is the largest of these;
the alarm statistic is the mean surprise over the last ``window_steps`` steps of the episode, and the alarm fires
when it exceeds the threshold calibrated at export: the ``1 - false_alarm_rate`` quantile of the statistic on
simulated rollouts under the training randomization (the rate measured on held-out rollouts is in the metadata).
Then it pushes ``(s_t, g_t, a_{t-1})`` into its window of the last ``history`` steps (filled with copies of the first
step at a reset, previous action 0, as the model was trained and evaluated) and predicts ``s_{t+1}`` from it and
``a_t``.

Exports calibrated with the stall statistic (metadata ``world_model.monitor.stall``) also accumulate, per term, the
log likelihood ratio of "the term moved ``rho`` times as predicted" over the episode (a one-sided CUSUM, see
:mod:`wam_isaac.deploy.statistics`); it fires when the world keeps moving less than predicted, which a model that
adapts to its window hides from the jump statistic. ``alarm`` is either of the two.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime

from .errors import BadObservation, MetadataError
from .rotations import state_difference
from .schema import load_metadata
from .statistics import episode_cusum, stall_llr, term_scores, windowed_mean

__all__ = ["Surprise", "SurpriseMonitor", "episode_cusum", "stall_llr", "term_scores", "windowed_mean"]


@dataclass
class Surprise:
    """What the monitor concluded about the states of one step, per env (arrays of shape (N,), or (N, K))."""

    score: np.ndarray
    """The step's surprise (largest calibrated per-term score); NaN where nothing was predicted (first step)."""
    statistic: np.ndarray
    """Mean surprise over the last ``window_steps`` steps of the episode (NaN before the first prediction)."""
    alarm: np.ndarray
    """``jump_alarm | stall_alarm``."""
    term_scores: np.ndarray
    """Per-term calibrated scores (N, K), in :attr:`SurpriseMonitor.term_names` order."""
    jump_alarm: np.ndarray
    """``statistic > threshold``."""
    stall_statistic: np.ndarray
    """Largest calibrated CUSUM of the stall log likelihood ratio since the episode's start over the monitored
    terms (NaN before the first prediction, or without a stall calibration)."""
    stall_alarm: np.ndarray
    """``stall_statistic > stall threshold`` (all False without a stall calibration)."""


class SurpriseMonitor:
    """Runs an export's ``world_model.onnx`` for ``num_envs`` robots (one on hardware) and raises alarms.

    Use :meth:`load`; call :meth:`reset` at every episode start, then :meth:`step` every control step.
    """

    def __init__(self, block: dict, session: onnxruntime.InferenceSession, num_envs: int = 1):
        calibration = block.get("monitor")
        if calibration is None:
            raise MetadataError("the export's world model has no calibrated monitor (metadata world_model.monitor)")
        self.block, self.session, self.num_envs = block, session, num_envs
        self.terms: list[dict] = block["state"]["terms"]
        self.term_names = [term["name"] for term in self.terms]
        self.instruction_terms: list[dict] = block["instruction"]["terms"]
        self.history = int(block["history"])
        self.scales = np.array([calibration["term_scales"][name] for name in self.term_names])
        self.threshold = float(calibration["threshold"])
        self.window_steps = int(calibration["window_steps"])
        stall = calibration.get("stall")  # absent in exports calibrated before the stall statistic
        self.stall_rho = None if stall is None else float(stall["rho"])
        self.stall_drift = 0.0 if stall is None else float(stall.get("drift", 0.0))
        self.stall_terms = [t for t in self.terms if stall is not None and t["name"] in stall["term_scales"]]
        self.stall_scales = np.array([stall["term_scales"][t["name"]] for t in self.stall_terms])
        self.stall_threshold = np.inf if stall is None else float(stall["threshold"])
        self.state_dim, self.action_dim = int(block["state"]["size"]), int(block["action"]["size"])
        self.instruction_dim = int(block["instruction"]["size"])
        self.input_names = [value["name"] for value in block["inputs"]]
        recurrent = block.get("recurrent")
        self._memory_shape = None if recurrent is None else (recurrent["num_layers"], recurrent["hidden_size"])
        self.reset()

    @classmethod
    def load(cls, export_dir: str | Path, num_envs: int = 1, verify_checksums: bool = True) -> SurpriseMonitor:
        """The monitor of an export directory written by ``wam export`` with a world model."""
        metadata = load_metadata(export_dir, verify_checksums)
        block = metadata.get("world_model")
        if not block:
            raise MetadataError(f"{export_dir} holds no world model (metadata world_model is null)")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        path = Path(export_dir) / block["file"]
        session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return cls(block, session, num_envs)

    def reset(self, envs: np.ndarray | None = None) -> None:
        """Start new episodes in ``envs`` (a bool mask or indices; all when ``None``)."""
        n = self.num_envs
        if envs is None or not hasattr(self, "_states"):
            self._states = np.zeros((n, self.history, self.state_dim), np.float32)
            self._instruction = np.zeros((n, self.history, self.instruction_dim), np.float32)
            self._prev_actions = np.zeros((n, self.history, self.action_dim), np.float32)
            self._last_action = np.zeros((n, self.action_dim), np.float32)
            self._fresh = np.ones(n, bool)
            self._predicted: tuple | None = None
            self._recent = [[] for _ in range(n)]
            self._cusum = np.full((n, len(self.stall_terms)), np.nan)
            return
        self._fresh[envs] = True
        self._last_action[envs] = 0.0
        self._cusum[envs] = np.nan
        for i in np.arange(n)[envs]:
            self._recent[i] = []

    def step(
        self, state_terms: Mapping[str, np.ndarray], action: np.ndarray, instruction_terms: Mapping | None = None
    ) -> Surprise:
        """Judge the measured states ``s_t`` against the last prediction, then predict ``s_{t+1}`` under ``action``.

        Args:
            state_terms: every state term by name, each (N, size) or (size,) for one env, physical units.
            action: the actions sent at this step, (N, A) or (A,).
            instruction_terms: every instruction term by name (tasks with an instruction).

        Raises:
            BadObservation: a missing, extra, mis-shaped or non-finite term.
        """
        states = self._gather(state_terms, self.terms, "state", self.state_dim)
        instruction = self._gather(instruction_terms or {}, self.instruction_terms, "instruction", self.instruction_dim)
        action = np.asarray(action, np.float32).reshape(self.num_envs, self.action_dim)
        surprise = self._judge(states)
        self._push(states, instruction)
        self._predict(action)
        self._last_action = action.copy()
        return surprise

    def _gather(self, terms: Mapping, layout: list[dict], what: str, size: int) -> np.ndarray:
        names = {term["name"] for term in layout}
        if terms.keys() != names:
            missing, extra = sorted(names - terms.keys()), sorted(set(terms) - names)
            raise BadObservation(f"{what} terms missing {missing}, unexpected {extra}")
        out = np.empty((self.num_envs, size), np.float32)
        start = 0
        for term in layout:
            width = term["state_slice"][1] - term["state_slice"][0] if "state_slice" in term else term["size"]
            value = np.asarray(terms[term["name"]], dtype=np.float32)
            if value.size != self.num_envs * width:
                raise BadObservation(
                    f"{what} term '{term['name']}': expected {width} values per env, got {value.shape}"
                )
            out[:, start : start + width] = value.reshape(self.num_envs, width)
            start += width
        if not np.isfinite(out).all():
            raise BadObservation(f"{what} terms hold non-finite values")
        return out

    def _judge(self, states: np.ndarray) -> Surprise:
        n, k = self.num_envs, len(self.terms)
        score, statistic = np.full(n, np.nan), np.full(n, np.nan)
        scores = np.full((n, k), np.nan)
        if self._predicted is not None:
            previous, mean, std = self._predicted
            judged = ~self._fresh  # a reset env's new state does not follow its last prediction
            measured = state_difference(previous, states, self.terms)
            scores[judged] = (term_scores(measured, mean, std, self.terms) / self.scales)[judged]
            score[judged] = scores[judged].max(-1)
            if self.stall_rho is not None:
                llr = stall_llr(measured, mean, std, self.stall_terms, self.stall_rho)[judged] - self.stall_drift
                self._cusum[judged] = np.maximum(0.0, np.nan_to_num(self._cusum[judged]) + llr)
        for i in range(n):
            if not np.isnan(score[i]):
                self._recent[i] = (self._recent[i] + [float(score[i])])[-self.window_steps :]
            if self._recent[i]:
                statistic[i] = np.mean(self._recent[i])
        jump = np.nan_to_num(statistic, nan=-np.inf) > self.threshold
        stall_statistic = np.full(n, np.nan)
        if self.stall_rho is not None:
            stall_statistic = (self._cusum / self.stall_scales).max(-1)
        stall = np.nan_to_num(stall_statistic, nan=-np.inf) > self.stall_threshold
        return Surprise(score, statistic, jump | stall, scores, jump, stall_statistic, stall)

    def _push(self, states: np.ndarray, instruction: np.ndarray) -> None:
        fresh = self._fresh
        for window, value in ((self._states, states), (self._instruction, instruction)):
            window[~fresh] = np.concatenate((window[~fresh, 1:], value[~fresh, None]), axis=1)
            window[fresh] = value[fresh, None]
        self._prev_actions[~fresh] = np.concatenate(
            (self._prev_actions[~fresh, 1:], self._last_action[~fresh, None]), axis=1
        )
        self._prev_actions[fresh] = 0.0
        self._fresh[:] = False

    def _predict(self, action: np.ndarray) -> None:
        feed = {"states": self._states, "prev_actions": self._prev_actions, "action": action}
        if "instruction" in self.input_names:
            feed["instruction"] = self._instruction
        if "memory_in" in self.input_names:
            layers, hidden = self._memory_shape
            feed["memory_in"] = np.zeros((layers, self.num_envs, hidden), np.float32)
        outputs = dict(zip([o["name"] for o in self.block["outputs"]], self.session.run(None, feed), strict=True))
        self._predicted = (self._states[:, -1].copy(), outputs["delta_mean"], outputs["delta_std"])
