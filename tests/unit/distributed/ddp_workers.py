"""What each rank of the distributed training tests runs (a module of its own: spawned processes import it)."""

from __future__ import annotations

import os

import torch
from linear_system import small_cfg

from wam_isaac.distributed.context import DistContext
from wam_isaac.distributed.preemption import StopRequest
from wam_isaac.training.run import make_trainer

WORLD_SIZE = 2


def config(data, out, **train):
    """The run every test trains: a GRU, global batch 32, deterministic."""
    torch.set_num_threads(1)
    return small_cfg(data, out, "gru", batch_size=32, epochs=2, deterministic=True, **train)


def global_step_losses(trainer, steps: int) -> list[float]:
    """Take ``steps`` gradient steps; the loss of each global batch (the mean of the ranks' losses)."""
    losses = []
    for number, batch in enumerate(trainer.epoch_batches()):
        if number == steps:
            break
        loss = trainer.step(batch)["loss"].double().reshape(1)
        losses.append(float(trainer.context.all_reduce(loss)) / trainer.context.world_size)
    return losses


def train_steps(rank: int, data: str, out: str, steps: int, results: str) -> None:
    """Rank ``rank`` of 2: fit the normalizers, take ``steps`` steps; save its losses, parameters and normalizers."""
    context = DistContext(rank=rank, world_size=WORLD_SIZE, local_rank=rank)
    context.init("cpu")
    try:
        trainer = make_trainer(config(data, out), log=None, context=context)
        losses = global_step_losses(trainer, steps)
        state = {name: value.clone() for name, value in trainer.model.state_dict().items()}
        episodes = trainer.parts.tables[0].episode_ids
        torch.save({"losses": losses, "state": state, "episodes": episodes}, os.path.join(results, f"rank{rank}.pt"))
    finally:
        context.shutdown()


def preempted_fit(rank: int, data: str, out: str, signal_at: int, results: str) -> None:
    """Rank ``rank`` of 2: fit, with rank 1 alone receiving a stop signal before its step ``signal_at``."""
    context = DistContext(rank=rank, world_size=WORLD_SIZE, local_rank=rank)
    context.init("cpu")
    try:
        stop = StopRequest(context)
        trainer = make_trainer(config(data, out), log=None, context=context, stop=stop)
        original = trainer.step

        def step(batch):
            if rank == 1 and trainer.batch == signal_at:
                stop._handle(15, None)  # SIGTERM, as the signal handler records it
            return original(batch)

        trainer.step = step
        trainer.fit()
        torch.save(
            {"interrupted": trainer.interrupted, "epoch": trainer.epoch, "batch": trainer.batch,
             "state": trainer.model.state_dict()},
            os.path.join(results, f"rank{rank}.pt"),
        )  # fmt: skip
    finally:
        context.shutdown()
