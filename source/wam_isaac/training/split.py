"""The train/validation split of ``wam train-model`` (and the episodes ``wam eval`` scores as held out)."""

from __future__ import annotations

import os

from ..data.manifest import load_manifest
from ..data.reader import episode_table, split_by_env, split_by_episode

SPLITS = ("env", "episode")
"""``train.split`` values: by env (each env's DR draw entirely on one side) or by episode."""


def split_episodes(
    dataset_dir: str | os.PathLike, val_fraction: float, seed: int, split: str = "env"
) -> tuple[list[int], list[int]]:
    """``(train_ids, val_ids)`` of a dataset, each sorted, split the way ``split`` names.

    Raises:
        ValueError: an unknown ``split``, or ``split="env"`` on a dataset whose manifest records no env ids (written
            before they were recorded).
    """
    if split == "episode":
        return split_by_episode(dataset_dir, val_fraction, seed=seed)
    if split != "env":
        raise ValueError(f"unknown train.split '{split}'; expected one of {', '.join(SPLITS)}")
    records = episode_table(load_manifest(dataset_dir)).values()
    if val_fraction > 0 and records and all(record.env_id < 0 for record in records):
        raise ValueError(
            f"the manifest of {dataset_dir} records no env id per episode (an older dataset): regenerate it with "
            "wam generate, or split by episode with train.split=episode"
        )
    return split_by_env(dataset_dir, val_fraction, seed=seed)
