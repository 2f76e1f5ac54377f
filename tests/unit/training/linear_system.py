"""Synthetic WAM datasets of a known linear system ``s_{t+1} = A s_t + B a_t``, written with the real
:class:`~wam_isaac.data.DatasetWriter` (no simulator), and small training configurations for them.

Imported by the tests of this directory (a unique module name, not ``conftest``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.models import TrunkCfg, model_cfg
from wam_isaac.training.config import TrainCfg, TrainModelCfg

A = np.array([[0.95, 0.10, 0.00], [-0.10, 0.90, 0.05], [0.00, -0.05, 0.90]])
"""State matrix of the system (eigenvalues inside the unit circle: bounded under bounded actions)."""
B = np.array([[0.20, 0.00], [0.00, 0.30], [0.10, -0.20]])
"""Input matrix of the system."""

KEY_SPECS = {
    "obs/world_model/pos": KeySpec((2,), "float32", "m", "state entries 0, 1"),
    "obs/world_model/vel": KeySpec((1,), "float32", "m/s", "state entry 2"),
    "obs/instruction/goal": KeySpec((2,), "float32", "m", "constant per episode"),
    "actions": KeySpec((2,), "float32", "1"),
    "rewards": KeySpec((), "float32", "1", "-|pos - goal|^2"),
    "dones": KeySpec((), "bool"),
    "labels/flags/terminated": KeySpec((), "bool"),
}


def linear_episode(rng: np.random.Generator, length: int, smooth: bool, env_id: int = 0) -> Episode:
    """One episode of the linear system from a random start: actions uniform in [-1, 1] at every step (rich
    excitation), or, with ``smooth``, two sinusoids of random phase."""
    if smooth:
        phase = rng.uniform(0.0, 2.0 * np.pi, size=2)
        actions = np.sin(0.15 * np.arange(length)[:, None] + phase)
    else:
        actions = rng.uniform(-1.0, 1.0, size=(length, 2))
    states = np.zeros((length, 3))
    states[0] = rng.standard_normal(3)
    for t in range(length - 1):
        states[t + 1] = A @ states[t] + B @ actions[t]
    goal = rng.uniform(-1.0, 1.0, size=2)
    steps = np.arange(length)
    return Episode(
        data={
            "obs/world_model/pos": states[:, :2].astype(np.float32),
            "obs/world_model/vel": states[:, 2:].astype(np.float32),
            "obs/instruction/goal": np.tile(goal, (length, 1)).astype(np.float32),
            "actions": actions.astype(np.float32),
            "rewards": -np.square(states[:, :2] - goal).sum(1).astype(np.float32),
            "dones": steps == length - 1,
            "labels/flags/terminated": np.zeros(length, dtype=bool),
        },
        env_id=env_id,
        seed=0,
        success=False,
        attrs={"timeout": True},
    )


def write_linear_dataset(out_dir: Path, episodes: int, length: int, smooth: bool = False, seed: int = 0) -> Path:
    """Write ``episodes`` episodes of ``length`` steps to ``out_dir``; returns ``out_dir``."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(out_dir, "WAM-Linear", "linear", KEY_SPECS, episodes_per_shard=16) as writer:
        writer.write_many(linear_episode(rng, length, smooth, env_id=index % 8) for index in range(episodes))
    return out_dir


def small_cfg(
    data: Path,
    out: Path,
    kind: str = "gru",
    *,
    hidden: int = 32,
    layers: int = 1,
    ensemble: int = 1,
    history: int = 4,
    forecast: int = 4,
    epochs: int = 1,
    batch_size: int = 32,
    lr: float = 3.0e-3,
    val_fraction: float = 0.0,
    **train,
) -> TrainModelCfg:
    """A small run of a ``kind`` model on ``data`` on the CPU."""
    trunk = TrunkCfg(kind=kind if kind in ("mlp", "gru", "transformer") else "gru", hidden=hidden, layers=layers)
    trunk.heads, trunk.context = 2, 32
    model = model_cfg(kind, trunk=trunk, head_hidden=hidden, ensemble=ensemble, policy_hidden=hidden)
    return TrainModelCfg(
        data=str(data),
        out=str(out),
        device="cpu",
        model=model,
        train=TrainCfg(
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            history=history,
            forecast=forecast,
            val_fraction=val_fraction,
            val_horizons=[1, 4],
            **train,
        ),
    )
