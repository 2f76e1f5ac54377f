"""What an episode's last step and final state are, recorded inside ``env.step`` before Isaac Lab's reset.

:meth:`ManagerBasedRLEnv.step <isaaclab.envs.ManagerBasedRLEnv.step>` (Isaac Lab 3.0) steps the physics, computes
terminations and rewards, and then, only when some env is done, calls ``recorder_manager.record_pre_reset(ids)``
and resets those envs (``_reset_idx``) before it returns; commands and interval events are applied after the reset
and the returned observations are computed last. Everything read after ``env.step`` therefore describes the *next*
episode of a finished env. :class:`TerminalRecorder` puts a thin proxy in front of the env's recorder manager whose
``record_pre_reset`` first runs :meth:`TerminalRecorder.record` and then hands over to the env's own manager, so
that on each step with a reset, while the finished envs still hold their final state, it

- labels the step for every env (:meth:`Labeler.compute`), so the finished envs' last labels describe their
  episode;
- snapshots the final state (s_T, the state after the last action) of every env: :func:`record_state` and every
  observation group (``extras["final_obs"]`` when the env's ``compute_final_obs`` already computed them, else one
  ``observation_manager.compute()``).

Why not a recorder term: a manager with an active term makes ``step`` compute every observation group at every
step (for ``record_post_step``) and converts env ids to Python lists and sets per-env success with ``.item()`` at
every reset (host synchronizations); the proxy costs nothing on steps without a reset and one labeling, one state
snapshot and one observation computation on steps with one. Steps without a reset are labeled after ``env.step``
as before; the driver labels steps with a reset again after ``env.step`` (``new_step=False``: the same history
slot) for the envs that did not finish, so that no env's labels depend on whether another env finished, and
the history holds the new episodes' first states.

Everything stays on the device: the finished envs are a device mask filled from Isaac Lab's ids without a host
synchronization.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .state import flatten_observations, record_state

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

    from ..labels.labeler import Labeler


class TerminalRecorder:
    """Labels and snapshots of the finished envs at their last step, taken before Isaac Lab resets them.

    Use :meth:`install` once, then around every ``env.step``: :meth:`arm` before it; after it, :attr:`fired` tells
    whether some env finished inside it (a host flag) and :attr:`finished`, :attr:`labels` and :attr:`final` hold
    what :meth:`record` took. Resets outside ``env.step`` (``env.reset``, the driver dropping a blown-up env) are
    ignored: the recorder is disarmed after each step.
    """

    def __init__(self, env: ManagerBasedRLEnv, labeler: Labeler):
        self.env = env
        self.labeler = labeler
        self.fired = False
        """Whether :meth:`record` ran during the last armed ``env.step`` (set on the host, no synchronization)."""
        self.finished = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
        """Envs reset inside the last step that fired, shape (num_envs,), on the env's device."""
        self.labels: dict[str, torch.Tensor] = {}
        """Copies of every env's labels before the reset (the labeler's keys), each (num_envs, ...)."""
        self.final: dict[str, torch.Tensor] = {}
        """Every env's state and observations before the reset (keys ``states/...``, ``obs/<group>[/<term>]``),
        each (num_envs, ...)."""
        self._armed = False
        self._manager = None

    def install(self) -> TerminalRecorder:
        """Put the proxy in front of the env's recorder manager (idempotent)."""
        if not isinstance(self.env.recorder_manager, _PreResetProxy):
            self._manager = self.env.recorder_manager
            self.env.recorder_manager = _PreResetProxy(self._manager, self)
        return self

    def uninstall(self) -> None:
        """Give the env its own recorder manager back."""
        if isinstance(self.env.recorder_manager, _PreResetProxy):
            self.env.recorder_manager = self._manager

    def arm(self) -> None:
        """Record at the resets of the next ``env.step`` (and clear :attr:`fired`)."""
        self.fired = False
        self._armed = True

    def disarm(self) -> None:
        self._armed = False

    def record(self, env_ids: torch.Tensor) -> None:
        """Label every env and snapshot its state, then mark ``env_ids`` finished; runs inside ``env.step`` right
        before the reset of ``env_ids`` (on the env's device, int32)."""
        if not self._armed:
            return
        env = self.env
        labels = self.labeler.compute(new_step=not self.fired)
        obs = env.extras.get("final_obs") if env.cfg.compute_final_obs else None
        final = record_state(env)
        final.update(flatten_observations(obs if obs is not None else env.observation_manager.compute()))
        ids = env_ids.long()  # on the env's device
        if not self.fired:
            self.labels = {key: value.clone() for key, value in labels.items()}
            self.final = final
            self.finished.zero_().index_fill_(0, ids, True)
            self.fired = True
            return
        # a second reset in the same step (Isaac Lab's visualizer reset request): take the rows of these envs only
        rows = torch.zeros_like(self.finished).index_fill_(0, ids, True)
        for into, source in ((self.labels, labels), (self.final, final)):
            for key, value in source.items():
                into[key] = torch.where(rows.view(-1, *[1] * (value.ndim - 1)), value, into[key])
        self.finished |= rows


class _PreResetProxy:
    """The env's recorder manager, with :meth:`TerminalRecorder.record` run first at every ``record_pre_reset``."""

    def __init__(self, manager, recorder: TerminalRecorder):
        self._manager = manager
        self._recorder = recorder

    def __getattr__(self, name: str):
        return getattr(self._manager, name)

    def record_pre_reset(self, env_ids, force_export_or_skip=None) -> None:
        if torch.is_tensor(env_ids):
            self._recorder.record(env_ids)
        self._manager.record_pre_reset(env_ids, force_export_or_skip)
