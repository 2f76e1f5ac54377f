"""The WAM trainer: minibatches of windows -> loss -> AdamW, with validation k-step errors, TensorBoard logging,
atomic checkpoints and exact resumption.

Run directory layout::

    <out>/config.yaml            the resolved configuration
    <out>/checkpoints/model_<epoch>.pt, last.pt
    <out>/events.out.tfevents.*  TensorBoard: train/<term>, val/<term>, val/error@<k>/<state term> (physical
                                 units), val/ratio@<k>[/<state term>] (model / copy-last), val/normalized@<k>, lr

Exact resumption: the shuffle of epoch ``e`` comes from a generator seeded with ``(seed, e)``, and the checkpoint
holds the model, optimizer, scheduler and global RNG states, so stopping after epoch ``e`` and resuming gives the
same parameters as never stopping (bit-identical on the CPU with ``deterministic=True``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..models.wam import world_model_of
from .checkpoint import rng_state, save_checkpoint, set_rng_state
from .config import TrainModelCfg
from .metrics import baseline_forecasts, fidelity_table, forecast
from .objectives import model_loss
from .sequences import Sequences, SequenceTable


def fit_normalizers(model: nn.Module, table: SequenceTable) -> None:
    """Fit every normalizer of ``model`` on the steps of ``table`` (the changes on its consecutive pairs of steps
    within an episode). Over several blocks, every ``num_blocks``-th step and pair: about one block's worth in all,
    so memory stays bounded."""
    every = table.num_blocks
    steps = table.gather(table.window_starts(1)[::every], 1)
    pairs = table.gather(table.window_starts(2)[::every], 2)
    world_model_of(model).fit_normalizers(steps, pairs)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The shuffle generator of an epoch: a function of (seed, epoch) only, so resuming replays the same order."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class Trainer:
    """Trains one model on a train table and validates on a val table.

    Args:
        cfg: the run configuration.
        model: the model (normalizers already fitted for a new run).
        train_table, val_table: the windows' sources.
        run_dir: where checkpoints and events go; ``None`` writes nothing (tests, benchmarks).
        log: called with one progress line per epoch.
    """

    def __init__(
        self,
        cfg: TrainModelCfg,
        model: nn.Module,
        train_table: SequenceTable,
        val_table: SequenceTable | None,
        run_dir: str | Path | None = None,
        log: Callable[[str], None] | None = print,
    ) -> None:
        self.cfg, self.model = cfg, model
        self.schema = world_model_of(model).schema
        self.train_table, self.val_table = train_table, val_table
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.log = log or (lambda line: None)
        self.device = torch.device(cfg.device)
        self.span = cfg.train.history + cfg.train.forecast
        windows = len(train_table.window_starts(self.span, cfg.train.stride))
        if not windows:
            raise ValueError(
                f"no training window of {self.span} steps (history {cfg.train.history} + forecast "
                f"{cfg.train.forecast}): the longest episode has {int(train_table.lengths.max(initial=0))} steps"
            )
        if windows < cfg.train.batch_size:  # batches drop the last partial one: an epoch would take no step
            raise ValueError(
                f"{windows} training windows, fewer than one batch of {cfg.train.batch_size}: lower train.batch_size"
            )
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(1, cfg.train.epochs), eta_min=cfg.train.lr * cfg.train.min_lr_ratio
        )
        self.epoch = 0
        """Epochs completed."""
        self.metrics: dict[str, float] = {}
        self._events = None

    # one step / one epoch ------------------------------------------------------------------------------------------
    def step(self, batch: Sequences) -> dict[str, torch.Tensor]:
        """One gradient step on ``batch``; returns the loss terms (detached)."""
        loss, terms = model_loss(self.model, batch, self.cfg.train.history, self.cfg.train.loss)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.train.grad_clip)
        self.optimizer.step()
        return {"loss": loss.detach(), **{name: value.detach() for name, value in terms.items()}}

    def train_epoch(self) -> dict[str, float]:
        """One pass over the shuffled training windows; returns the mean of every loss term."""
        self.model.train()
        sums: dict[str, torch.Tensor] = {}
        count, start = 0, time.perf_counter()
        generator = epoch_generator(self.cfg.train.seed, self.epoch)
        for batch in self.train_table.batches(self.span, self.cfg.train.batch_size, generator, self.cfg.train.stride):
            for name, value in self.step(batch.to(self.device)).items():
                sums[name] = sums.get(name, 0.0) + value
            count += 1
        self.scheduler.step()
        self.epoch += 1
        means = {name: float(total) / max(count, 1) for name, total in sums.items()}
        means["windows_per_s"] = count * self.cfg.train.batch_size / (time.perf_counter() - start)
        return means

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
        predicted, _, _ = forecast(self.model, batch.states, batch.instruction, batch.actions, history)
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
        return self.val_table.gather(starts, span).to(self.device) if len(starts) else None

    # the loop ------------------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train from epoch :attr:`epoch` to ``cfg.train.epochs``, validating and logging every epoch and
        checkpointing every ``save_every`` epochs and at the end; returns the last validation figures."""
        total = self.cfg.train.epochs
        while self.epoch < total:
            train = self.train_epoch()
            val = self.validate()
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
        """Everything needed to resume exactly, and to rebuild the model."""
        from omegaconf import OmegaConf

        return {
            "config": OmegaConf.to_container(OmegaConf.structured(self.cfg)),
            "schema": self.schema.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            "rng": rng_state(),
            "metrics": dict(self.metrics),
        }

    def load_state(self, payload: dict[str, Any]) -> None:
        """Continue from a checkpoint written by :meth:`save`."""
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.epoch = int(payload["epoch"])
        self.metrics = dict(payload.get("metrics", {}))
        set_rng_state(payload["rng"])

    def save(self) -> Path | None:
        """Write ``model_<epoch>.pt`` and ``last.pt`` atomically; returns the path of the former."""
        if self.run_dir is None:
            return None
        state = self.state()
        path = save_checkpoint(self.run_dir / "checkpoints" / f"model_{self.epoch}.pt", state)
        save_checkpoint(self.run_dir / "checkpoints" / "last.pt", state)
        return path

    def close(self) -> None:
        if self._events is not None:
            self._events.close()
