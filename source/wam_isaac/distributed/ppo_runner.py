"""rsl-rl's ``OnPolicyRunner`` as ``wam train`` runs it: on several CPU ranks (Gloo), and preemption-safe.

rsl-rl 5.5's runner reads torchrun's ``WORLD_SIZE`` / ``RANK`` / ``LOCAL_RANK`` and, with several ranks, requires the
device ``cuda:<LOCAL_RANK>`` and joins an NCCL process group; Isaac Lab 3.0's ``train --distributed`` refuses a CPU
device. :class:`WamRunner` keeps that path unchanged on GPUs and adds the CPU one: Gloo, the same ``multi_gpu``
config for the algorithm (so PPO's and WamPPO's broadcast, gradient all-reduce and learning-rate agreement run as
on GPUs), logging and checkpoints from rank 0 only (rsl-rl's logger writes nothing on the other ranks).

Preemption: SIGTERM or SIGUSR1 (a :class:`~wam_isaac.distributed.preemption.StopRequest`) -> the iteration in
progress finishes (rollout, update, log), rank 0 writes ``model_<it>.pt`` as a normal save would, and ``learn``
returns, so the run exits 0; ``--checkpoint`` on that file resumes from there. The stop is agreed by every rank at
the end of each iteration (one tiny all-reduce), so all ranks stop after the same update.

:func:`runner_installed` makes Isaac Lab's ``create_rsl_rl_runner`` build a :class:`WamRunner` (it accepts only the
name ``OnPolicyRunner``); checkpoints are the plain runner's.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from rsl_rl.runners import OnPolicyRunner

from .context import from_environment
from .preemption import StopRequest

_stop: StopRequest | None = None
"""The stop request of this process (installed by :func:`stop_request`, read by every :class:`WamRunner`)."""


def stop_request() -> StopRequest:
    """This process's stop request: SIGTERM / SIGUSR1 are caught from the first call on (before the simulator
    starts, so a signal during start-up stops the run after its first iteration instead of killing it)."""
    global _stop
    if _stop is None:
        _stop = StopRequest(from_environment()).install()
    return _stop


class _Preempted(Exception):
    """Raised at the end of an iteration once every rank agreed to stop."""


class WamRunner(OnPolicyRunner):
    """``OnPolicyRunner`` with CPU ranks (Gloo) and preemption (see the module docstring)."""

    preempted_at: int | None = None
    """The iteration after which the run stopped on a signal (None: it ran to the end)."""

    def _configure_multi_gpu(self) -> None:
        """rsl-rl's multi-GPU setup on GPUs; on the CPU, the same ``multi_gpu`` config over a Gloo process group."""
        context = from_environment()
        if not context.distributed or str(self.device).startswith("cuda"):
            super()._configure_multi_gpu()
            return
        self.gpu_world_size, self.is_distributed = context.world_size, True
        self.gpu_local_rank, self.gpu_global_rank = context.local_rank, context.rank
        self.cfg["multi_gpu"] = {
            "global_rank": context.rank,
            "local_rank": context.local_rank,
            "world_size": context.world_size,
        }
        context.init(str(self.device))  # Gloo for the CPU (nothing if the process already joined the group)

    def learn(self, num_learning_iterations: int, init_at_random_ep_len: bool = False) -> None:
        """rsl-rl's loop; a stop signal ends it after the iteration in progress, with a checkpoint (rank 0)."""
        stop = stop_request()
        log = self.logger.log

        def log_then_check(**kwargs) -> None:
            log(**kwargs)
            if stop.requested():  # every rank calls this after every iteration: they agree
                raise _Preempted

        self.logger.log = log_then_check
        try:
            super().learn(num_learning_iterations, init_at_random_ep_len)
        except _Preempted:
            self.preempted_at = self.current_learning_iteration
            self._checkpoint_on_stop(stop)
        finally:
            self.logger.log = log

    def _checkpoint_on_stop(self, stop: StopRequest) -> None:
        if self.logger.writer is None:  # not rank 0, or no log directory: nothing to write
            return
        path = os.path.join(self.logger.log_dir, f"model_{self.current_learning_iteration}.pt")
        self.save(path)
        self.logger.stop_logging_writer()
        print(f"[wam] {stop.name()}: checkpoint {path} after iteration {self.current_learning_iteration}; resume "
              f"with --checkpoint {path}", flush=True)  # fmt: skip


@contextmanager
def runner_installed():
    """Within the block, Isaac Lab's ``create_rsl_rl_runner`` builds :class:`WamRunner` for ``OnPolicyRunner``."""
    from isaaclab_rl.rsl_rl import utils

    previous = utils.OnPolicyRunner
    utils.OnPolicyRunner = WamRunner
    try:
        yield
    finally:
        utils.OnPolicyRunner = previous
