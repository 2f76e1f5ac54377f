"""Read a dataset written by :class:`~wam_isaac.data.writer.DatasetWriter`: manifest, integrity, episodes, windows,
splits. The one reader of the package: :class:`DatasetReader` serves any rows of any episode (windows for training,
items for inspection) without loading a dataset into memory; :func:`read_episode` and :func:`iter_episodes` return
whole :class:`Episode` s (with their final state).

Memory: :class:`DatasetReader` keeps one open file per shard it touched, each with HDF5's own LRU cache of decompressed
chunks (:data:`CHUNK_CACHE_BYTES` per dataset): reading window after window of an episode decompresses each chunk
once, and memory is bounded by the cache sizes, not by the dataset. :func:`iter_episodes` holds one shard's columns at a
time.

Integrity: :func:`verify` checks every shard the manifest lists (present, readable, sha256 equal to the manifest's)
and returns the names of the bad ones. Files that look like shards but are not in the manifest (a ``.tmp`` shard
left by a crash, a shard completed after the last manifest update) are not part of the dataset: readers ignore them,
:func:`verify` does not report them, and :func:`unlisted_files` names them so that a tool can offer to remove them.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .episode import Episode
from .errors import ManifestError
from .manifest import MANIFEST_NAME, is_dataset_file, load_manifest, sha256_file, shard_episode_ids
from .shards import index_episode, read_index, read_shard_episodes

CHUNK_CACHE_BYTES = 4 << 20
"""HDF5 chunk cache of each per-step dataset a :class:`DatasetReader` opens [bytes]: four chunks of
:data:`~wam_isaac.data.shards.CHUNK_BYTES` (a chunk larger than the cache would be decompressed at every read)."""

__all__ = [
    "DatasetReader",
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
    """Global episode id."""
    shard: str
    """File name of the shard holding it, relative to the dataset directory."""
    num_samples: int
    """Number of steps in the episode."""
    env_id: int
    """Index of the env that produced the episode."""
    start: int
    """Row of the episode's first step in its shard's ``steps/<key>`` datasets."""


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
        start = 0
        for episode_id, length, env_id in zip(
            shard_episode_ids(shard), shard["episode_lengths"], shard["env_ids"], strict=True
        ):
            table[episode_id] = EpisodeRecord(episode_id, shard["name"], int(length), int(env_id), start)
            start += int(length)
    return dict(sorted(table.items()))


def read_episode(dataset_dir: str | os.PathLike, episode_id: int) -> Episode:
    """One episode, fully loaded, with its final state.

    Raises:
        ManifestError: no complete shard holds ``episode_id``.
    """
    with DatasetReader(dataset_dir) as reader:
        return reader.episode(episode_id)


def iter_episodes(dataset_dir: str | os.PathLike) -> Iterator[tuple[int, Episode]]:
    """``(episode id, episode)`` for every episode in id order, shard by shard (one shard's columns in memory)."""
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir)
    for shard in manifest["shards"]:
        with h5py.File(dataset_dir / shard["name"], "r") as file:
            episodes = read_shard_episodes(file, list(manifest["keys"]))
        yield from zip(shard_episode_ids(shard), episodes, strict=True)


class DatasetReader:
    """Rows of any key of any episode, read on demand from the shards (see the module docstring for memory).

    Args:
        dataset_dir: the dataset directory.

    Shard files are opened lazily, once per process (a forked DataLoader worker opens its own).
    """

    def __init__(self, dataset_dir: str | os.PathLike) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.manifest = load_manifest(self.dataset_dir)
        self.keys = list(self.manifest["keys"])
        """Per-step keys, in the manifest's order."""
        self.episodes = episode_table(self.manifest)
        """Every episode's :class:`EpisodeRecord`, keyed by episode id, in id order."""
        self._files: dict[str, h5py.File] = {}
        self._pid = os.getpid()

    def record(self, episode_id: int) -> EpisodeRecord:
        """Where episode ``episode_id`` is stored.

        Raises:
            ManifestError: the dataset has no such episode.
        """
        if episode_id not in self.episodes:
            raise ManifestError(
                f"episode {episode_id} is not in {self.dataset_dir} (it holds {len(self.episodes)} episodes)"
            )
        return self.episodes[episode_id]

    def rows(self, episode_id: int, key: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """Steps ``start .. stop - 1`` (default: to the end) of ``key`` in episode ``episode_id``,
        shape (stop - start, *spec.shape); never beyond the episode."""
        record = self.record(episode_id)
        stop = record.num_samples if stop is None else stop
        if not 0 <= start <= stop <= record.num_samples:
            raise IndexError(f"rows {start}:{stop} outside episode {episode_id} of {record.num_samples} steps")
        if key not in self.manifest["keys"]:
            raise ManifestError(f"key {key!r} is not in {self.dataset_dir} (it has {self.keys})")
        return self._file(record.shard)["steps"][key][record.start + start : record.start + stop]

    def column(self, shard: str, key: str) -> h5py.Dataset:
        """The ``steps/<key>`` dataset of ``shard`` (a file name of the manifest), for whole-shard reads."""
        return self._file(shard)["steps"][key]

    def final_column(self, shard: str, key: str) -> h5py.Dataset | None:
        """The ``final/<key>`` dataset of ``shard`` (one row per episode of the shard, in its index order: the state
        after each episode's last action), or ``None`` if the shard recorded no final ``key``."""
        file = self._file(shard)
        return file["final"][key] if "final" in file and key in file["final"] else None

    def window(self, episode_id: int, start: int, length: int, keys: Sequence[str] | None = None) -> dict:
        """``{key: rows start .. start + length - 1}`` of episode ``episode_id`` (default: every key)."""
        return {key: self.rows(episode_id, key, start, start + length) for key in keys or self.keys}

    def episode(self, episode_id: int) -> Episode:
        """Episode ``episode_id`` whole: every key, its metadata and its final state."""
        record = self.record(episode_id)
        file = self._file(record.shard)
        index = read_index(file)
        row = int(np.searchsorted(index["episode_id"], episode_id))
        final = {key: file["final"][key][row] for key in self.manifest["final_keys"]}
        return index_episode(index, row, self.window(episode_id, 0, record.num_samples), final)

    def close(self) -> None:
        """Close the shard files this process opened."""
        for file in self._files.values():
            file.close()
        self._files.clear()

    def __enter__(self) -> DatasetReader:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_files": {}}

    def _file(self, shard: str) -> h5py.File:
        if self._pid != os.getpid():  # a forked worker: HDF5 handles must not be shared across processes
            self._files, self._pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(
                self.dataset_dir / shard, "r", rdcc_nbytes=CHUNK_CACHE_BYTES, rdcc_nslots=1021
            )
        return self._files[shard]


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
