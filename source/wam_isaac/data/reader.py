"""Read a dataset written by :class:`~wam_isaac.data.writer.DatasetWriter`: manifest, integrity, episodes, splits.

Integrity: :func:`verify` checks every shard the manifest lists (present, readable, sha256 equal to the manifest's)
and returns the names of the bad ones. Files that look like shards but are not in the manifest (a ``.tmp`` shard
left by a crash, a shard completed after the last manifest update) are not part of the dataset: readers ignore them,
:func:`verify` does not report them, and :func:`unlisted_files` names them so that a tool can offer to remove them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .episode import Episode
from .errors import ManifestError
from .manifest import MANIFEST_NAME, is_dataset_file, load_manifest, sha256_file, shard_episode_ids
from .shards import read_episode as read_demo

__all__ = [
    "EpisodeRecord",
    "episode_table",
    "iter_episodes",
    "load_manifest",
    "read_episode",
    "split_by_env",
    "split_by_episode",
    "unlisted_files",
    "verify",
]


@dataclass(frozen=True)
class EpisodeRecord:
    """Where an episode is stored and how long it is."""

    episode_id: int
    """Global episode id; the episode is the group ``data/demo_<episode_id>``."""
    shard: str
    """File name of the shard holding it, relative to the dataset directory."""
    num_samples: int
    """Number of steps in the episode."""
    env_id: int = -1
    """Index of the env that produced the episode (-1 in manifests written before env ids were listed)."""


def verify(dataset_dir: str | os.PathLike) -> list[str]:
    """Names of the manifest's shards that are missing, unreadable, or whose sha256 differs from the manifest's,
    in manifest order; empty if the dataset is intact.

    Raises:
        ManifestError: the manifest itself is missing or malformed.
    """
    dataset_dir = Path(dataset_dir)
    bad = []
    for shard in load_manifest(dataset_dir)["shards"]:
        try:
            digest = sha256_file(dataset_dir / shard["name"])
        except OSError:
            bad.append(shard["name"])  # missing or unreadable: reported by name, which is the point of verify
            continue
        if digest != shard["sha256"]:
            bad.append(shard["name"])
    return bad


def unlisted_files(dataset_dir: str | os.PathLike) -> list[str]:
    """Shard and temporary files in ``dataset_dir`` that the manifest does not list, sorted by name."""
    dataset_dir = Path(dataset_dir)
    listed = {shard["name"] for shard in load_manifest(dataset_dir)["shards"]} | {MANIFEST_NAME}
    return sorted(path.name for path in dataset_dir.iterdir() if is_dataset_file(path.name) and path.name not in listed)


def episode_table(manifest: dict[str, Any]) -> dict[int, EpisodeRecord]:
    """Every episode of a manifest, keyed by episode id, in id order."""
    table = {}
    for shard in manifest["shards"]:
        lengths = shard["episode_lengths"]
        env_ids = shard.get("env_ids", [-1] * len(lengths))
        for episode_id, length, env_id in zip(shard_episode_ids(shard), lengths, env_ids, strict=True):
            table[episode_id] = EpisodeRecord(episode_id, shard["name"], int(length), int(env_id))
    return dict(sorted(table.items()))


def read_episode(dataset_dir: str | os.PathLike, episode_id: int) -> Episode:
    """One episode, fully loaded.

    Raises:
        ManifestError: no complete shard holds ``episode_id``.
    """
    table = episode_table(load_manifest(dataset_dir))
    if episode_id not in table:
        raise ManifestError(f"episode {episode_id} is not in {dataset_dir} (it holds {len(table)} episodes)")
    with h5py.File(Path(dataset_dir) / table[episode_id].shard, "r") as file:
        return read_demo(file["data"], episode_id)


def iter_episodes(dataset_dir: str | os.PathLike) -> Iterator[tuple[int, Episode]]:
    """``(episode id, episode)`` for every episode, shard by shard in the order the shard stores them (with several
    writing processes, ids interleave across shards), one shard file open at a time."""
    dataset_dir = Path(dataset_dir)
    for shard in load_manifest(dataset_dir)["shards"]:
        with h5py.File(dataset_dir / shard["name"], "r") as file:
            for episode_id in shard_episode_ids(shard):
                yield episode_id, read_demo(file["data"], episode_id)


def split_by_episode(dataset_dir: str | os.PathLike, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split a dataset's episode ids into disjoint train and validation sets, deterministically.

    The ids are permuted with a NumPy generator seeded by ``seed``; the first ``round(val_fraction * n)`` (at least
    one when ``val_fraction > 0`` and there are two episodes or more) go to validation. The same dataset and seed
    give the same split; adding episodes to a dataset changes it.

    Returns:
        ``(train_ids, val_ids)``, each sorted.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    ids = np.array(sorted(episode_table(load_manifest(dataset_dir))), dtype=np.int64)
    num_val = int(round(val_fraction * len(ids)))
    if val_fraction > 0 and len(ids) >= 2:
        num_val = min(max(num_val, 1), len(ids) - 1)
    permuted = np.random.default_rng(seed).permutation(ids)
    return sorted(permuted[num_val:].tolist()), sorted(permuted[:num_val].tolist())


def split_by_env(dataset_dir: str | os.PathLike, val_fraction: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Split a dataset's episode ids into train and validation sets so that all the episodes of one env are on one
    side (consecutive episodes of an env share its DR draw and start where the last one reset), deterministically.

    The env ids are permuted with a NumPy generator seeded by ``seed``; envs go to validation in that order until it
    holds at least ``val_fraction`` of the episodes (at least one env when ``val_fraction > 0``, and never every
    env when there are two or more).

    Returns:
        ``(train_ids, val_ids)``, each sorted.

    Raises:
        ValueError: ``val_fraction`` is not in [0, 1).
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    table = episode_table(load_manifest(dataset_dir))
    by_env: dict[int, list[int]] = {}
    for record in table.values():
        by_env.setdefault(record.env_id, []).append(record.episode_id)
    envs = np.random.default_rng(seed).permutation(np.array(sorted(by_env), dtype=np.int64)).tolist()
    val: list[int] = []
    for count, env_id in enumerate(envs):
        if val_fraction == 0 or len(val) >= val_fraction * len(table) or count == len(envs) - 1:
            break
        val += by_env[env_id]
    val_set = set(val)
    return sorted(i for i in table if i not in val_set), sorted(val)
