"""Which process of a torch.distributed job this is, and the few collectives the rest of the package needs.

``torchrun`` (and ``wam generate --num_procs P``, which launches the same thing) starts one process per rank with the
environment variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``.
:func:`from_environment` reads them; :meth:`DistContext.init` joins the process group: Gloo on the CPU, NCCL on GPUs
(where each rank takes ``cuda:<LOCAL_RANK>``, as Isaac Lab's and rsl-rl's ``--distributed`` do). A process started
without them is a job of one rank: every collective here is then a no-op, so the same code path runs both ways.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from datetime import timedelta

import torch

TIMEOUT_SECONDS = 1800
"""How long a collective waits for the other ranks before failing [s]: a rank that died makes the others fail
instead of waiting forever (torchrun's agent usually stops them first)."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in the job."""

    rank: int = 0
    """Global rank, 0 .. world_size - 1."""
    world_size: int = 1
    """Number of processes of the job."""
    local_rank: int = 0
    """Rank on this node (selects the GPU)."""

    @property
    def distributed(self) -> bool:
        """Whether the job has more than one rank."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that logs, checkpoints and publishes manifests."""
        return self.rank == 0

    def device(self, device: str) -> str:
        """This rank's device: ``cuda`` or ``cuda:N`` become ``cuda:<local_rank>`` in a job of several ranks (one GPU
        per rank); ``cpu`` stays ``cpu``."""
        if self.distributed and device.startswith("cuda"):
            return f"cuda:{self.local_rank}"
        return device

    def init(self, device: str, backend: str | None = None) -> None:
        """Join the process group (default: Gloo for ``cpu``, NCCL for ``cuda``); nothing for a job of one rank."""
        if not self.distributed or torch.distributed.is_initialized():
            return
        backend = backend or ("nccl" if device.startswith("cuda") else "gloo")
        if backend == "nccl":
            torch.cuda.set_device(self.device(device))
        torch.distributed.init_process_group(
            backend, rank=self.rank, world_size=self.world_size, timeout=timedelta(seconds=TIMEOUT_SECONDS)
        )

    def shutdown(self) -> None:
        """Leave the process group (if this process joined one)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()

    # collectives (no-ops for one rank) -----------------------------------------------------------------------------
    def barrier(self) -> None:
        if self.distributed:
            torch.distributed.barrier()

    def all_reduce(self, tensor: torch.Tensor, op: str = "sum") -> torch.Tensor:
        """``tensor`` reduced over the ranks (``sum``, ``max`` or ``min``), in place; returned for chaining. A host
        tensor goes through this rank's GPU under NCCL (which reduces only CUDA tensors)."""
        if self.distributed:
            reduce_op = {"sum": torch.distributed.ReduceOp.SUM, "max": torch.distributed.ReduceOp.MAX}
            reduce_op["min"] = torch.distributed.ReduceOp.MIN
            target = tensor
            if torch.distributed.get_backend() == "nccl" and tensor.device.type != "cuda":
                target = tensor.to(f"cuda:{self.local_rank}")
            torch.distributed.all_reduce(target, op=reduce_op[op])
            if target is not tensor:
                tensor.copy_(target)
        return tensor

    def all_gather_object(self, value):
        """Every rank's ``value`` (picklable), in rank order."""
        if not self.distributed:
            return [value]
        gathered = [None] * self.world_size
        torch.distributed.all_gather_object(gathered, value)
        return gathered

    def broadcast_object(self, value, src: int = 0):
        """Rank ``src``'s ``value`` on every rank."""
        if not self.distributed:
            return value
        box = [value]
        torch.distributed.broadcast_object_list(box, src=src)
        return box[0]


def from_environment() -> DistContext:
    """The context torchrun's environment variables describe (a job of one rank without them).

    Raises:
        ValueError: the variables are inconsistent (a rank outside ``0 .. WORLD_SIZE - 1``, a non-integer).
    """
    names = ("RANK", "WORLD_SIZE", "LOCAL_RANK")
    values = {name: os.environ.get(name, "") for name in names}
    if not values["WORLD_SIZE"]:
        return DistContext()
    for name, text in values.items():
        if not re.fullmatch(r"\d+", text or "0"):
            raise ValueError(f"environment variable {name}={text!r} is not a non-negative integer (set by torchrun)")
    rank, world_size = int(values["RANK"] or 0), int(values["WORLD_SIZE"])
    if world_size < 1 or rank >= world_size:
        raise ValueError(f"RANK={rank} is outside 0..WORLD_SIZE-1 (WORLD_SIZE={world_size})")
    return DistContext(rank=rank, world_size=world_size, local_rank=int(values["LOCAL_RANK"] or 0))
