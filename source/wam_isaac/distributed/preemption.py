"""Preemption: SIGTERM or SIGUSR1 asks a run to stop at its next safe point, checkpoint and exit 0.

Cluster schedulers warn a job before they kill it: SLURM sends SIGTERM (and, with ``--signal=USR1@<seconds>``,
SIGUSR1 that many seconds earlier), Kubernetes sends SIGTERM. :class:`StopRequest` turns either signal into a flag that
the training loop reads between gradient steps. In a job of several ranks the flag is combined over the ranks at every
check (one tiny all-reduce, MAX), so that all ranks stop after the same step even when the signal reaches them at
slightly different times: a rank that stopped alone would leave the others waiting in DDP's gradient all-reduce.
"""

from __future__ import annotations

import signal

import torch

from .context import DistContext

SIGNALS = (signal.SIGTERM, signal.SIGUSR1)
"""The signals that request a stop."""


class StopRequest:
    """A flag set by SIGTERM or SIGUSR1 once :meth:`install` ran; :meth:`requested` reads it across the ranks.

    Args:
        context: the job (the flag is combined over its ranks).
    """

    def __init__(self, context: DistContext | None = None) -> None:
        self.context = context or DistContext()
        self.signal: int | None = None
        """The first signal received (None: none yet)."""
        self._previous: dict[int, object] = {}

    def install(self) -> StopRequest:
        """Catch the stop signals from now on (in the main thread); returns self."""
        for signum in SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        """Restore the handlers that were in place before :meth:`install`."""
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame) -> None:
        if self.signal is None:
            self.signal = signum

    @property
    def local(self) -> bool:
        """Whether this process received a stop signal."""
        return self.signal is not None

    def requested(self) -> bool:
        """Whether any rank received a stop signal (a collective: every rank must call it at the same point)."""
        if not self.context.distributed:
            return self.local
        flag = torch.tensor([1.0 if self.local else 0.0])
        return bool(self.context.all_reduce(flag, op="max").item())

    def name(self) -> str:
        """The received signal's name (``SIGTERM``), or ``stop`` if another rank received it."""
        return signal.Signals(self.signal).name if self.signal is not None else "stop"
