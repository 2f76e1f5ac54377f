"""Sim-to-real randomization of the action pipeline: per-env latency and actuator strength.

:class:`ActuationRandomizedAction` wraps any Isaac Lab action term. At every env reset it samples, per env,

- a latency of ``d`` control steps (``d`` uniform in ``latency_steps``): the action applied at step ``t`` is the
  one the policy sent at step ``t - d``; during the first ``d`` steps of an episode nothing has arrived yet and the
  wrapped term receives zeros, as a real robot whose command pipeline has not delivered yet;
- a strength factor ``s`` (uniform in ``strength_scale``) multiplying the raw action before the wrapped term scales
  it: an actuator that is weaker or stronger than modeled.

Both are readable at run time (:attr:`latency`, :attr:`strength`) and are recorded with each episode.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import ActionTerm, ActionTermCfg
from isaaclab.utils import configclass

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv


class ActuationRandomizedAction(ActionTerm):
    """Delays and scales the actions of a wrapped action term, per environment."""

    cfg: ActuationRandomizedActionCfg

    def __init__(self, cfg: ActuationRandomizedActionCfg, env: ManagerBasedEnv):
        cfg.asset_name = cfg.term.asset_name
        super().__init__(cfg, env)
        low, high = cfg.latency_steps
        if not 0 <= low <= high:
            raise ValueError(f"latency_steps must satisfy 0 <= low <= high, got {cfg.latency_steps}")
        if not 0.0 < cfg.strength_scale[0] <= cfg.strength_scale[1]:
            raise ValueError(f"strength_scale must satisfy 0 < low <= high, got {cfg.strength_scale}")
        self._term: ActionTerm = cfg.term.class_type(cfg.term, env)
        n, dim = self.num_envs, self._term.action_dim
        self._raw = torch.zeros(n, dim, device=self.device)
        # ring buffer of the last (max latency + 1) raw actions; slot t % depth holds step t
        self._history = torch.zeros(high + 1, n, dim, device=self.device)
        self._step = torch.zeros(n, dtype=torch.long, device=self.device)
        self._env_index = torch.arange(n, device=self.device)
        self.latency = torch.full((n,), low, dtype=torch.long, device=self.device)
        """Latency of each env [control steps], shape (num_envs,)."""
        self.strength = torch.ones(n, device=self.device)
        """Strength factor of each env [1], shape (num_envs,)."""
        self._resample(self._env_index)

    @property
    def action_dim(self) -> int:
        return self._term.action_dim

    @property
    def raw_actions(self) -> torch.Tensor:
        """The actions the policy sent this step, before delay and scaling, shape (num_envs, action_dim)."""
        return self._raw

    @property
    def processed_actions(self) -> torch.Tensor:
        return self._term.processed_actions

    @property
    def term(self) -> ActionTerm:
        """The wrapped action term."""
        return self._term

    def process_actions(self, actions: torch.Tensor):
        self._raw[:] = actions
        depth = self._history.shape[0]
        self._history[self._step % depth, self._env_index] = actions
        # the action sent `latency` steps ago; zeros until that many steps have passed since reset
        delayed = self._history[(self._step - self.latency) % depth, self._env_index]
        delayed = torch.where((self._step >= self.latency).unsqueeze(-1), delayed, torch.zeros_like(delayed))
        self._step += 1
        self._term.process_actions(delayed * self.strength.unsqueeze(-1))

    def apply_actions(self):
        self._term.apply_actions()

    def reset(self, env_ids=None) -> None:
        if env_ids is None or isinstance(env_ids, slice):
            ids = self._env_index[env_ids if isinstance(env_ids, slice) else slice(None)]
        else:
            ids = torch.as_tensor(env_ids, device=self.device, dtype=torch.long)
        self._term.reset(env_ids)
        self._raw[ids] = 0.0
        self._history[:, ids] = 0.0
        self._step[ids] = 0
        self._resample(ids)

    def _resample(self, ids: torch.Tensor) -> None:
        low, high = self.cfg.latency_steps
        self.latency[ids] = torch.randint(low, high + 1, (len(ids),), device=self.device)
        s_low, s_high = self.cfg.strength_scale
        self.strength[ids] = torch.empty(len(ids), device=self.device).uniform_(s_low, s_high)


@configclass
class ActuationRandomizedActionCfg(ActionTermCfg):
    """Configuration of :class:`ActuationRandomizedAction`."""

    class_type: type[ActionTerm] = ActuationRandomizedAction

    asset_name: str = ""
    """Filled from :attr:`term` (the wrapped term's asset)."""

    term: ActionTermCfg = None  # type: ignore[assignment]
    """The wrapped action term (e.g. ``JointEffortActionCfg``); it receives the delayed, scaled actions."""

    latency_steps: tuple[int, int] = (0, 0)
    """Inclusive range [control steps] of the per-env action latency, sampled at each env reset."""

    strength_scale: tuple[float, float] = (1.0, 1.0)
    """Range [1] of the per-env factor on the raw action (actuator strength), sampled at each env reset."""
