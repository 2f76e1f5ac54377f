"""The WAM trainer: minibatches of windows -> loss -> AdamW, with validation k-step errors, TensorBoard logging,
atomic checkpoints, exact resumption, preemption and distributed data parallelism.

Run directory layout::

    <out>/config.yaml            the resolved configuration
    <out>/checkpoints/model_<epoch>.pt, last.pt
    <out>/events.out.tfevents.*  TensorBoard: train/<term>, val/<term>, val/error@<k>/<state term> (physical
                                 units), val/ratio@<k>[/<state term>] (model / copy-last), val/normalized@<k>, lr

Exact resumption: the shuffle of epoch ``e`` comes from a generator seeded with ``(seed, e)``, and the checkpoint
holds the model, optimizer, scheduler and global RNG states and the batches done in the current epoch, so stopping
anywhere and resuming gives the same parameters as never stopping (bit-identical on the CPU with
``deterministic=True``).

Preemption: with a :class:`~wam_isaac.distributed.preemption.StopRequest`, SIGTERM or SIGUSR1 ends the epoch at the
next gradient step (a safe point: every rank has taken the same steps); :meth:`Trainer.fit` then writes ``last.pt``
with the position in the epoch and returns, and ``--resume`` continues from that batch.

Several ranks (torchrun): each rank holds its own part of the training episodes
(:mod:`wam_isaac.distributed.partition`), the model is wrapped in DistributedDataParallel (gradients averaged over the
ranks), the loss terms are averaged over the ranks, and only rank 0 validates, logs and writes checkpoints.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..distributed.context import DistContext
from ..distributed.partition import Parts, part_generator
from ..distributed.preemption import StopRequest
from ..models.wam import world_model_of
from .action_targets import with_action_targets
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .config import TrainModelCfg
from .ensemble_split import split_loss, split_parts
from .metrics import baseline_forecasts, fidelity_table, forecast
from .objectives import model_loss
from .sequences import Sequences, SequenceTable


def normalizer_sample(table: SequenceTable) -> tuple[Sequences, Sequences]:
    """The windows of one step and of two consecutive steps the normalizers are fitted on: over several blocks, every
    ``num_blocks``-th one (about one block's worth in all, so memory stays bounded)."""
    every = table.num_blocks
    steps = with_action_targets(table.gather(table.window_starts(1)[::every], 1), table)
    return steps, with_action_targets(table.gather(table.window_starts(2)[::every], 2), table)


def fit_normalizers(model: nn.Module, table: SequenceTable) -> None:
    """Fit every normalizer of ``model`` on the steps of ``table`` (the changes on its consecutive pairs of steps
    within an episode); see :func:`normalizer_sample`."""
    world_model_of(model).fit_normalizers(*normalizer_sample(table))


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffle generator of an epoch: a function of (seed, epoch) only, so resuming replays the same order."""
    return part_generator(seed, epoch, 0)


class _Loss(nn.Module):
    """The loss of a model as a module, so that DistributedDataParallel sees it as the forward pass (its gradient
    hooks only synchronize what a forward through it produced)."""

    def __init__(self, model: nn.Module, history: int, cfg) -> None:
        super().__init__()
        self.model, self.history, self.cfg = model, history, cfg

    def forward(self, batch: Sequences):
        return model_loss(self.model, batch, self.history, self.cfg)


class Trainer:
    """Trains one model on a train table and validates on a val table.

    Args:
        cfg: the run configuration.
        model: the model (normalizers already fitted for a new run).
        train_table: the training windows' source: a table, or this process's :class:`Parts` of the data.
        val_table: the validation windows' source (rank 0's; None: no validation).
        run_dir: where checkpoints and events go; ``None`` writes nothing (tests, benchmarks).
        log: called with one progress line per epoch.
        context: the distributed job (default: one process).
        stop: the preemption flag read before every gradient step (default: none).
    """

    def __init__(
        self,
        cfg: TrainModelCfg,
        model: nn.Module,
        train_table: SequenceTable | Parts,
        val_table: SequenceTable | None,
        run_dir: str | Path | None = None,
        log: Callable[[str], None] | None = print,
        context: DistContext | None = None,
        stop: StopRequest | None = None,
    ) -> None:
        self.cfg, self.model = cfg, model
        self.context = context or DistContext()
        self.stop = stop
        self.schema = world_model_of(model).schema
        self.train_table, self.val_table = train_table, val_table
        self.parts = train_table if isinstance(train_table, Parts) else Parts([train_table], [0], 1)
        self.parts = split_parts(cfg, model, self.parts, self.context.distributed)  # train.ensemble_split
        if self.parts.num_parts != self.context.world_size and self.context.distributed:
            raise ValueError(f"{self.parts.num_parts} data parts for {self.context.world_size} ranks")
        self.run_dir = Path(run_dir) if run_dir is not None and self.context.is_main else None
        self.log = (log or (lambda line: None)) if self.context.is_main else (lambda line: None)
        self.device = torch.device(cfg.device)
        self.span = cfg.train.history + cfg.train.forecast
        self.steps_per_epoch = self._steps_per_epoch()
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(1, cfg.train.epochs), eta_min=cfg.train.lr * cfg.train.min_lr_ratio
        )
        self.loss = split_loss(cfg, model, _Loss(model, cfg.train.history, cfg.train.loss))
        if self.context.distributed:
            from torch.nn.parallel import DistributedDataParallel

            device_ids = [self.device.index] if self.device.type == "cuda" else None
            # the normalizers are fitted identically on every rank and never change: no buffer broadcast per step
            self.loss = DistributedDataParallel(self.loss, device_ids=device_ids, broadcast_buffers=False)
        self.epoch = 0
        """Epochs completed."""
        self.batch = 0
        """Gradient steps done in the current epoch (nonzero after a preemption)."""
        self.interrupted: str | None = None
        """The stop signal's name if the last :meth:`fit` stopped early (preemption)."""
        self.metrics: dict[str, float] = {}
        self._carried: dict[str, float] = {}  # loss sums of the current epoch's steps before a preemption
        self._events = None

    def _steps_per_epoch(self) -> int:
        cfg = self.cfg.train
        try:
            local = self.parts.steps_per_epoch(self.span, cfg.batch_size, cfg.stride)
        except ValueError as error:
            raise ValueError(str(error)) from None
        steps = int(self.context.all_reduce(torch.tensor([local]), op="min").item())
        if steps == 0:
            longest = max(int(t.lengths.max(initial=0)) for t in self.parts.tables)
            if longest < self.span:
                raise ValueError(
                    f"no training window of {self.span} steps (history {cfg.history} + forecast {cfg.forecast}): "
                    f"the longest episode has {longest} steps"
                )
            windows = min(len(t.window_starts(self.span, cfg.stride, pad_ends=True)) for t in self.parts.tables)
            if self.parts.num_parts == 1:
                raise ValueError(
                    f"{windows} training windows, fewer than one batch of {cfg.batch_size}: lower train.batch_size"
                )
            raise ValueError(
                f"a part of the training data has {windows} windows, fewer than its share "
                f"{cfg.batch_size // self.parts.num_parts} of a batch of {cfg.batch_size} over "
                f"{self.parts.num_parts} ranks: lower train.batch_size"
            )
        return steps

    # one step / one epoch ------------------------------------------------------------------------------------------
    def step(self, batch: Sequences) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch`` (this rank's share of the global batch); returns this rank's loss terms
        (detached)."""
        loss, terms = self.loss(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()  # under DDP: the gradients are averaged over the ranks here
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        return {"loss": loss.detach(), **{name: value.detach() for name, value in terms.items()}}

    def epoch_batches(self, skip: int = 0):
        """This rank's share of the global batches of the current epoch, from batch ``skip`` on, on the device."""
        cfg = self.cfg.train
        for batch in self.parts.batches(
            self.span, cfg.batch_size, cfg.seed, self.epoch, self.steps_per_epoch, cfg.stride, skip
        ):
            yield with_action_targets(batch, self.parts.tables[0]).to(self.device)

    def train_epoch(self) -> dict[str, float]:
        """The rest of the current epoch over the shuffled training windows; returns the mean of every loss term over
        the epoch's steps and the ranks. Stops before a step when :attr:`stop` is requested (then :attr:`interrupted`
        is set, and the epoch is neither counted nor its scheduler stepped)."""
        self.model.train()
        # float64 sums, started from the sums carried over a preemption (rank 0 holds them, times the ranks, as the
        # global sum is the ranks' sum over their number): one process adds the steps in the same order either way
        scale = self.context.world_size if self.context.is_main else 0
        sums = {name: torch.tensor(value * scale, dtype=torch.float64) for name, value in self._carried.items()}
        count, start = 0, time.perf_counter()
        for batch in self.epoch_batches(skip=self.batch):
            if self.stop is not None and self.stop.requested():
                self.interrupted = self.stop.name()
                break
            for name, value in self.step(batch).items():
                sums[name] = sums.get(name, 0.0) + value.double()
            count += 1
            self.batch += 1
        means = self._global_sums(sums)
        if self.interrupted is not None:
            self._carried = means  # sums so far of this epoch, carried into the checkpoint
            return {}
        self.scheduler.step()
        self.epoch, self.batch, self._carried = self.epoch + 1, 0, {}
        means = {name: total / self.steps_per_epoch for name, total in means.items()}
        means["windows_per_s"] = count * self.cfg.train.batch_size / (time.perf_counter() - start)
        return means

    def _global_sums(self, sums: dict[str, torch.Tensor]) -> dict[str, float]:
        """Per-term sums over this rank's steps -> sums over the steps of the global batch losses (the mean over the
        ranks: the ranks' batches are equal shares of a global batch)."""
        if not sums:
            return {}
        names = sorted(sums)
        values = torch.stack([torch.as_tensor(sums[name], dtype=torch.float64).cpu() for name in names])
        values = self.context.all_reduce(values)
        return {name: float(value) / self.context.world_size for name, value in zip(names, values, strict=True)}

    @torch.no_grad()
    def validate(self) -> dict[str, float]:
        """Loss terms and k-step rollout errors (physical units, over copy-last, normalized: see
        :mod:`~wam_isaac.training.metrics`) on the first ``val_windows`` validation windows."""
        if self.val_table is None:
            return {}
        self.model.eval()
        cfg = self.cfg.train
        horizons = [k for k in cfg.val_horizons if k >= 1]
        figures: dict[str, float] = {}
        batch = self._val_batch(self.span)
        if batch is not None:
            _, terms = model_loss(self.model, batch, cfg.history, cfg.loss)
            figures.update({name: float(value) for name, value in terms.items()})
        long = self._val_batch(cfg.history + max(horizons)) if horizons else None
        if long is not None:
            figures.update(self._fidelity_figures(long, horizons))
        return figures

    def _fidelity_figures(self, batch: Sequences, horizons: list[int]) -> dict[str, float]:
        """``error@k/<term>`` (physical units), ``ratio@k[/<term>]`` (model / copy-last) and ``normalized@k`` of the
        model's rollouts on ``batch``."""
        history = self.cfg.train.history
        predicted, _, _ = forecast(
            self.model, batch.states, batch.instruction, batch.actions, history, batch.action_before
        )
        baselines = baseline_forecasts(batch.states, history, self.schema)
        table = fidelity_table(
            batch.states[:, history - 1],
            batch.states[:, history:],
            {"model": predicted, "copy_last": baselines["copy_last"]},
            self.schema,
            horizons,
        )
        figures = {}
        for index, k in enumerate(horizons):
            figures[f"normalized@{k}"] = table["normalized"]["model"]["all"][index]
            for name, values in table["ratio"]["model"].items():
                figures[f"ratio@{k}" if name == "all" else f"ratio@{k}/{name}"] = values[index]
            for name, values in table["error"]["model"].items():
                figures[f"error@{k}/{name}"] = values[index]
        return figures

    def _val_batch(self, span: int) -> Sequences | None:
        starts = self.val_table.window_starts(span, max(1, span // 4))[: self.cfg.train.val_windows]
        if not len(starts):
            return None
        return with_action_targets(self.val_table.gather(starts, span), self.val_table).to(self.device)

    # the loop ------------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train from :attr:`epoch` to ``cfg.train.epochs``, validating and logging every epoch and checkpointing every
        ``save_every`` epochs and at the end; returns the last figures. A stop request ends it at the next gradient
        step with a checkpoint (``last.pt``) that ``--resume`` continues from."""
        total = self.cfg.train.epochs
        self.interrupted = None
        while self.epoch < total:
            train = self.train_epoch()
            if self.interrupted is not None:
                self.save(preempted=True)
                self.log(f"[wam] {self.interrupted}: stopped in epoch {self.epoch + 1} after batch {self.batch}")
                return self.metrics
            val = self.validate() if self.context.is_main else {}
            self.metrics = {**{f"train/{k}": v for k, v in train.items()}, **{f"val/{k}": v for k, v in val.items()}}
            self._log_scalars(self.metrics)
            self.log(self._progress_line(train, val))
            if self.epoch % self.cfg.train.save_every == 0 or self.epoch == total:
                self.save()
        return self.metrics

    def _progress_line(self, train: dict[str, float], val: dict[str, float]) -> str:
        horizons = [
            f"@{k} model/copy-last {val[f'ratio@{k}']:.3f}" for k in self.cfg.train.val_horizons if f"ratio@{k}" in val
        ]
        action = f"  val action_mse {val['action_mse']:.4f}" if "action_mse" in val else ""
        return (
            f"[wam] epoch {self.epoch}/{self.cfg.train.epochs}  loss {train['loss']:.4f}  "
            f"val dynamics_nll {val.get('dynamics_nll', math.nan):.4f}  {'  '.join(horizons)}{action}  "
            f"({train['windows_per_s']:.0f} windows/s)"
        )

    def _log_scalars(self, figures: dict[str, float]) -> None:
        if self.run_dir is None:
            return
        if self._events is None:
            from torch.utils.tensorboard import SummaryWriter

            self._events = SummaryWriter(str(self.run_dir))
        for name, value in figures.items():
            self._events.add_scalar(name, value, self.epoch)
        self._events.add_scalar("lr", self.optimizer.param_groups[0]["lr"], self.epoch)
        self._events.flush()

    # checkpoints ---------------------------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """Everything needed to resume exactly (at an epoch's end or inside one), and to rebuild the model."""
        from omegaconf import OmegaConf

        return {
            "config": OmegaConf.to_container(OmegaConf.structured(self.cfg)),
            "schema": self.schema.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "batch": self.batch,
            "epoch_sums": dict(self._carried),
            "world_size": self.context.world_size,
            "rng": rng_state(),
            "metrics": dict(self.metrics),
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`save`, by a run of any number of ranks (inside an epoch: from
        the same number of global batches on)."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.epoch = int(payload["epoch"])
        self.batch = int(payload.get("batch", 0))
        if self.batch >= self.steps_per_epoch:
            raise ValueError(
                f"the checkpoint stopped after batch {self.batch} of its epoch, but this run's epochs have "
                f"{self.steps_per_epoch} batches"
            )
        self._carried = {name: float(value) for name, value in payload.get("epoch_sums", {}).items()}
        self.metrics = dict(payload.get("metrics", {}))
        set_rng_state(payload["rng"])
        if self.context.rank:  # every rank its own stream from here on (rank 0 continues the saved one)
            seed = self.cfg.train.seed * 1_000_003 + self.epoch * 1009 + self.batch
            torch.manual_seed(seed + 7919 * self.context.rank)

    def save(self, preempted: bool = False) -> Path | None:
        """Write ``model_<epoch>.pt`` (at an epoch's end) and ``last.pt`` atomically (rank 0 only); returns the path
        of the last file written."""
        if self.run_dir is None:
            return None
        state = self.state()
        path = None
        if not preempted:
            path = save_checkpoint(self.run_dir / "checkpoints" / f"model_{self.epoch}.pt", state)
        last = save_checkpoint(self.run_dir / "checkpoints" / "last.pt", state)
        return path or last

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
