"""World-model training: throughput of the project's :meth:`Trainer.train_epoch` vs a plain PyTorch loop training
the same GRU world model (target: ratio >= 0.95, the trainer adds no overhead).

Both sides start from the same initialization and see the same batches in the same order (the trainer's per-epoch
shuffle, reproduced in the plain loop), with the same loss (:func:`objectives.world_model_loss`), AdamW, gradient
clipping and cosine schedule; so their parameters stay bit-identical, which the benchmark checks and reports
(``same_parameters``). Epochs are timed interleaved (trainer, plain, plain, trainer, ...) after one warm-up epoch each,
and the figure is the median of the per-pair ratios: absolute times drift on a shared machine. The same ratio
in process CPU time is reported too: other processes inflate wall time far more than CPU time.

Data: a synthetic damped linear system (12 state dims in 3 terms, 2 instruction dims, 4 action dims) written with the
real :class:`~wam_isaac.data.DatasetWriter` to a temporary directory, so the benchmark runs anywhere.
"""

from __future__ import annotations

import copy
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.models import TrunkCfg, model_cfg
from wam_isaac.training.config import TrainCfg, TrainModelCfg
from wam_isaac.training.objectives import world_model_loss
from wam_isaac.training.run import make_trainer
from wam_isaac.training.trainer import epoch_generator

RATIO_TARGET = 0.95
STATE_TERMS = {"joint_pos": 4, "joint_vel": 4, "cube_pos": 4}
ACTION_DIM = 4
BATCH_SIZE = 64

KEY_SPECS = {
    **{f"obs/world_model/{name}": KeySpec((size,)) for name, size in STATE_TERMS.items()},
    "obs/instruction/goal": KeySpec((2,)),
    "actions": KeySpec((ACTION_DIM,)),
    "rewards": KeySpec(()),
    "dones": KeySpec((), "bool"),
    "labels/flags/terminated": KeySpec((), "bool"),
}


def _episodes(count: int, length: int) -> list[Episode]:
    """Episodes of ``s_{t+1} = A s_t + B a_t`` (A: a damped random rotation) under random actions."""
    rng = np.random.default_rng(0)
    dim = sum(STATE_TERMS.values())
    rotation, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    a_matrix, b_matrix = 0.95 * rotation, 0.2 * rng.standard_normal((dim, ACTION_DIM))
    episodes = []
    for _ in range(count):
        actions = rng.uniform(-1.0, 1.0, size=(length, ACTION_DIM))
        states = np.zeros((length, dim))
        states[0] = rng.standard_normal(dim)
        for t in range(length - 1):
            states[t + 1] = a_matrix @ states[t] + b_matrix @ actions[t]
        terms = np.split(states, np.cumsum(list(STATE_TERMS.values()))[:-1], axis=1)
        data = {f"obs/world_model/{name}": t.astype(np.float32) for name, t in zip(STATE_TERMS, terms, strict=True)}
        data.update({
            "obs/instruction/goal": np.tile(rng.uniform(-1, 1, 2), (length, 1)).astype(np.float32),
            "actions": actions.astype(np.float32),
            "rewards": -np.square(states).sum(1).astype(np.float32),
            "dones": np.arange(length) == length - 1,
            "labels/flags/terminated": np.zeros(length, dtype=bool),
        })  # fmt: skip
        episodes.append(Episode(data, env_id=0, seed=0, success=False, attrs={"timeout": True}))
    return episodes


class PlainLoop:
    """The reference: the same model copy, optimizer and schedule, one hand-written epoch loop."""

    def __init__(self, trainer) -> None:
        cfg = trainer.cfg.train
        self.model = copy.deepcopy(trainer.model)
        self.table, self.span, self.cfg = trainer.train_table, trainer.span, cfg
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=max(1, cfg.epochs), eta_min=cfg.lr * cfg.min_lr_ratio
        )

    def epoch(self, epoch: int) -> None:
        cfg, table = self.cfg, self.table
        self.model.train()
        starts = table.window_starts(self.span, cfg.stride)
        starts = starts[torch.randperm(len(starts), generator=epoch_generator(cfg.seed, epoch))]  # the trainer's order
        for first in range(0, len(starts) - len(starts) % cfg.batch_size, cfg.batch_size):
            batch = table.gather(starts[first : first + cfg.batch_size], self.span)
            loss, _ = world_model_loss(self.model, batch, cfg.history, cfg.loss)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.optimizer.step()
        self.scheduler.step()


def _timed(function) -> tuple[float, float]:
    """Wall time and this process's CPU time of ``function()`` [s]."""
    wall, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - wall, time.process_time() - cpu


def run(args) -> list[dict]:
    quick = args.quick
    episodes, length = (24, 60) if quick else (48, 120)
    hidden, repeats = (64, 4) if quick else (128, 8)  # even: each side goes first equally often
    stride = 1 if quick else 2  # short epochs: the two sides of a pair run close in time
    history, forecast = (4, 8) if quick else (8, 16)
    with tempfile.TemporaryDirectory() as temp:
        data = Path(temp) / "data"
        with DatasetWriter(data, "WAM-Bench-Linear", "bench", KEY_SPECS, episodes_per_shard=32) as writer:
            writer.write_many(_episodes(episodes, length))
        cfg = TrainModelCfg(
            data=str(data),
            out=str(Path(temp) / "run"),
            device=args.device,
            model=model_cfg("gru", trunk=TrunkCfg(kind="gru", hidden=hidden, layers=2), head_hidden=hidden),
            train=TrainCfg(
                epochs=repeats + 1,
                batch_size=BATCH_SIZE,
                history=history,
                forecast=forecast,
                stride=stride,
                val_fraction=0.0,
            ),
        )
        trainer = make_trainer(cfg, log=None)
        plain = PlainLoop(trainer)
        windows = len(trainer.train_table.window_starts(trainer.span, stride)) // BATCH_SIZE * BATCH_SIZE
        trainer.train_epoch()  # warm-up epoch 0, both sides
        plain.epoch(0)
        trainer_s, plain_s = [], []
        for epoch in range(1, repeats + 1):
            pair = [(trainer_s, trainer.train_epoch), (plain_s, lambda epoch=epoch: plain.epoch(epoch))]
            for times, function in pair if epoch % 2 else pair[::-1]:
                times.append(_timed(function))
        expected, actual = trainer.model.state_dict(), plain.model.state_dict()
        same = all(torch.equal(expected[name], actual[name]) for name in expected)
    ratios = [p[0] / t[0] for t, p in zip(trainer_s, plain_s, strict=True)]  # (windows / t) / (windows / p)
    ratio = statistics.median(ratios)
    # CPU time is less disturbed than wall time by other processes on a shared machine
    cpu_ratio = statistics.median(p[1] / t[1] for t, p in zip(trainer_s, plain_s, strict=True))
    common = {
        "model": f"gru hidden {hidden}", "history": history, "forecast": forecast, "batch_size": BATCH_SIZE,
        "windows_per_epoch": windows, "stride": stride, "repeats": repeats, "device": args.device,
    }  # fmt: skip
    pairs = ", ".join(f"{r:.3f}" for r in ratios)
    print(
        f"[bench] trainer / plain loop throughput ratio: {ratio:.3f} (pairs: {pairs}; CPU time: {cpu_ratio:.3f})",
        file=sys.stderr,
    )
    return [
        {"name": "windows_per_s/trainer", "value": round(windows / statistics.median(t[0] for t in trainer_s), 1),
         "unit": "windows/s", "target": None, **common},
        {"name": "windows_per_s/plain_loop", "value": round(windows / statistics.median(t[0] for t in plain_s), 1),
         "unit": "windows/s", "target": None, **common},
        {"name": "ratio/trainer_vs_plain_loop", "value": round(ratio, 3), "unit": "x", "target": RATIO_TARGET,
         "pass": ratio >= RATIO_TARGET and same, "same_parameters": same, "pair_ratios": [round(r, 3) for r in ratios],
         **common},
        {"name": "ratio/trainer_vs_plain_loop_cpu_time", "value": round(cpu_ratio, 3), "unit": "x",
         "target": RATIO_TARGET, "pass": cpu_ratio >= RATIO_TARGET and same, **common},
    ]  # fmt: skip
