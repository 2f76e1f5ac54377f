"""Scale-out on torch.distributed (Gloo on CPUs, NCCL on GPUs), launched by torchrun or ``wam generate --num_procs``.

- ``context.py``: :class:`DistContext` (rank, world size, local rank; the process group; a few collectives that are
  no-ops in a job of one rank), :func:`from_environment` (torchrun's variables).
- ``preemption.py``: :class:`StopRequest`: SIGTERM / SIGUSR1 -> stop at the next safe point, agreed by every rank.
- ``partition.py``: each rank's training episodes, the global batch of the ranks' shares.
- ``normalizers.py``: normalizer statistics from every rank's data (all-reduced moments).
- ``generation.py``: each rank's dataset journal and the one manifest rank 0 publishes once every rank finished.
- ``launch.py``: ``--num_procs P``: the same job as torchrun, started from the command.
- ``ppo_runner.py``: :class:`WamRunner`, rsl-rl's ``OnPolicyRunner`` as ``wam train`` runs it: CPU ranks over Gloo
  (rsl-rl's multi-GPU path otherwise), a checkpoint and exit 0 on SIGTERM / SIGUSR1.
- ``wam_ppo_sync.py``: :class:`RankSync`, what keeps joint-WAM PPO (WamPPO) identical on every rank.
"""

from __future__ import annotations

from .context import DistContext, from_environment
from .preemption import StopRequest

__all__ = ["DistContext", "StopRequest", "from_environment"]
