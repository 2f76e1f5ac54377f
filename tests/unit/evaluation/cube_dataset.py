"""A small synthetic dataset in WAM-Push-Cube's layout (written with the real DatasetWriter, no simulator) and a
tiny model trained on it for one epoch. Imported by the tests of this directory (a unique module name)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.models import TrunkCfg, model_cfg
from wam_isaac.training.config import TrainCfg, TrainModelCfg

STATE_TERMS = {"joint_pos": 3, "joint_vel": 3, "cube_pos": 3, "cube_quat": 4, "cube_lin_vel": 3, "cube_ang_vel": 3}
"""Push-Cube's world-model terms and sizes, in order."""
HISTORY = 4
"""History H of the test model [steps]."""
LENGTHS = [30, 30, 30, 30, 30, 30, 30, 12]
"""Episode lengths of the test dataset: seven long enough for 4 + 16 step windows, one too short."""


def key_specs(drop: str | None = None) -> dict[str, KeySpec]:
    """The dataset's keys; ``drop`` leaves one world-model term out (a dataset the model cannot read)."""
    specs = {f"obs/world_model/{name}": KeySpec((size,)) for name, size in STATE_TERMS.items() if name != drop}
    specs.update(
        {
            "obs/instruction/goal": KeySpec((2,), unit="m"),
            "actions": KeySpec((3,)),
            "rewards": KeySpec(()),
            "dones": KeySpec((), "bool"),
            "labels/flags/terminated": KeySpec((), "bool"),
        }
    )
    return specs


def cube_episode(rng: np.random.Generator, length: int, specs: dict[str, KeySpec], env_id: int = 0) -> Episode:
    """The arm wanders, the cube slides slowly in x at rest height (0.425 m), flat."""
    t = np.arange(length)
    joint_pos = np.cumsum(rng.normal(0.0, 0.02, (length, 3)), axis=0) + np.array([-0.98, 2.46, -1.48])
    speed = rng.uniform(0.0, 0.05)
    data = {
        "obs/world_model/joint_pos": joint_pos,
        "obs/world_model/joint_vel": np.gradient(joint_pos, axis=0) / 0.04,
        "obs/world_model/cube_pos": np.stack([0.36 + speed * 0.04 * t, np.zeros(length), np.full(length, 0.425)], 1),
        "obs/world_model/cube_quat": np.tile([0.0, 0.0, 0.0, 1.0], (length, 1)),
        "obs/world_model/cube_lin_vel": np.tile([speed, 0.0, 0.0], (length, 1)),
        "obs/world_model/cube_ang_vel": np.zeros((length, 3)),
        "obs/instruction/goal": np.tile(rng.uniform(-0.1, 0.1, 2), (length, 1)),
        "actions": rng.uniform(-1, 1, (length, 3)),
        "rewards": np.zeros(length),
        "dones": t == length - 1,
        "labels/flags/terminated": np.zeros(length, dtype=bool),
    }
    data = {key: np.asarray(value, dtype=specs[key].dtype) for key, value in data.items() if key in specs}
    return Episode(data=data, env_id=env_id, seed=0, success=False, dr={}, attrs={})


def write_cube_dataset(out_dir: Path, lengths: list[int], drop: str | None = None, task: str = "WAM-Push-Cube") -> Path:
    """Episodes of the given lengths, in Push-Cube's layout (seeded)."""
    rng = np.random.default_rng(0)
    specs = key_specs(drop)
    with DatasetWriter(out_dir, task, "cafe", specs, episodes_per_shard=4) as writer:
        writer.write_many([cube_episode(rng, length, specs, env_id=i % 4) for i, length in enumerate(lengths)])
    return out_dir


def tiny_config(data: Path, out: Path, kind: str = "joint", ensemble: int = 1) -> TrainModelCfg:
    """One epoch of a tiny model (16 wide), a quarter of the episodes held out."""
    trunk = TrunkCfg(kind="mlp" if kind == "mlp" else "gru", hidden=16, layers=1)
    return TrainModelCfg(
        data=str(data),
        out=str(out),
        model=model_cfg(kind, trunk=trunk, head_hidden=16, policy_hidden=16, ensemble=ensemble),
        train=TrainCfg(epochs=1, batch_size=16, history=HISTORY, forecast=4, val_fraction=0.25, val_horizons=[1]),
    )
