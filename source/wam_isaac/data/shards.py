"""A columnar HDF5 shard: one dataset per key for all the episodes of the shard, plus an episode index.

Layout (``schema_version`` 3)::

    /                          attrs: format_version (1: quaternions xyzw, Isaac Lab 3.0's marker), schema_version,
                                      task_id, env_config_hash, env_args (JSON), shard_index, total (transitions)
    steps/<key>                (total, *spec.shape) every episode's steps, back to back in episode-id order
    episodes/episode_id        (E,) int64  global episode id
    episodes/start             (E,) int64  row of the episode's first step in steps/<key>
    episodes/num_samples       (E,) int64  its number of steps
    episodes/env_id, seed      (E,) int64
    episodes/success           (E,) bool
    episodes/attrs/<name>      (E,) the episode's extra scalars (bool, int64, float64 or UTF-8 text)
    episodes/dr/<asset>/<p>    (E, *shape) its domain-randomization parameters
    final/<key>                (E, *spec.shape) the state after its last action (``Episode.final``), if recorded

Why columnar: the cost of HDF5 is per object (a dataset, an attribute); one group of ~60 objects per episode made
the writer's cost a constant per episode whatever its length (``wam bench dataset_writer``). Here a shard has a fixed
number of objects (one per key, per index column), so the cost per episode is the cost of its bytes.

Chunking: ``steps/<key>`` is chunked along rows only, ``chunk_rows = clamp(CHUNK_BYTES / row bytes)`` rounded down to
a power of two: a chunk of ~256 kB is quick to decompress for a window read, keeps the per-chunk overhead (a B-tree
entry, a zlib stream header) negligible, and four fit in the reader's per-dataset chunk cache (see
:data:`~wam_isaac.data.reader.CHUNK_CACHE_BYTES`), so windows read one after the other within an episode decompress
each chunk once. Index and ``final`` datasets are small and contiguous.

Compression: gzip (HDF5's deflate, with the shuffle filter), the one codec every HDF5 reader decodes (h5py, HDF5's C
library, robomimic, Isaac Lab, MATLAB...). Chunks are shuffled and deflated here with ISA-L's deflate (the same zlib
streams, several times faster than zlib; zlib where ISA-L is absent) and written with HDF5's direct chunk
write. Rows are appended in blocks of many episodes; a key's rows that do not fill a chunk wait for the next block
(only the shard's last chunk is partial, padded with zeros as HDF5 stores edge chunks).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .episode import Episode
from .frames import is_frame
from .specs import KeySpec

try:  # Intel ISA-L: the same zlib streams as zlib's, much faster at its levels 1-3
    from isal import isal_zlib
except ImportError:  # a platform without its wheels: zlib itself
    isal_zlib = None

FORMAT_VERSION = 1
"""Isaac Lab 3.0's ``format_version`` root attribute: 1 says quaternions are xyzw (its reader converts files without
it, taking them for legacy wxyz ones)."""

CHUNK_BYTES = 1 << 18
"""Target size of one chunk of ``steps/<key>``, uncompressed [bytes]."""

MAX_CHUNK_ROWS = 1 << 16
"""Longest chunk [rows] (a 1-byte key would otherwise get 256k rows per chunk)."""

INDEX_COLUMNS = ("episode_id", "start", "num_samples", "env_id", "seed", "success")
"""The per-episode columns every shard has under ``episodes/``."""


def chunk_rows(spec: KeySpec) -> int:
    """Rows per chunk of a key: about :data:`CHUNK_BYTES`, a power of two in [1, :data:`MAX_CHUNK_ROWS`]; one for a
    camera frame key (:func:`~wam_isaac.data.frames.is_frame`: random access to single frames stays cheap)."""
    if is_frame(spec):
        return 1
    row_bytes = max(1, int(np.prod(spec.shape, dtype=np.int64)) * np.dtype(spec.dtype).itemsize)
    rows = max(1, min(MAX_CHUNK_ROWS, CHUNK_BYTES // row_bytes))
    return 1 << (rows.bit_length() - 1)


class ShardWriter:
    """Writes one shard: :meth:`append` blocks of episodes, then :meth:`close` (index, final states, sizes).

    Args:
        path: the (temporary) file to create.
        key_specs: per-step keys.
        attrs: root attributes besides ``format_version`` and ``total`` (task, config hash, env_args...).
        compression: ``"gzip"`` or None (uncompressed chunks).
        compression_level: gzip level 1-9.
    """

    def __init__(
        self,
        path: Path,
        key_specs: Mapping[str, KeySpec],
        attrs: Mapping[str, Any],
        compression: str | None,
        compression_level: int,
    ) -> None:
        self.path = path
        self.level = compression_level
        self.file = h5py.File(path, "w", libver=("v110", "latest"))
        self.file.attrs.update({"format_version": FORMAT_VERSION, **attrs, "total": 0})
        self._columns = [
            _Column(self.file, key, spec, compression, compression_level) for key, spec in key_specs.items()
        ]
        self._keys = list(key_specs)
        self._specs = dict(key_specs)
        self._compression = compression
        self.index: list[tuple[int, int, Episode]] = []
        """``(episode id, steps, episode)`` of every appended episode; the episode without its per-step data."""
        self.rows = 0
        """Steps appended so far."""

    def append(self, block: Sequence[tuple[int, Episode]]) -> None:
        """Append episodes ``(episode id, episode)`` in order; full chunks are written now, the rest waits."""
        rows = sum(episode.num_samples for _, episode in block)
        for key, column in zip(self._keys, self._columns, strict=True):
            column.append([episode.data[key] for _, episode in block], rows, self._deflate)
        for episode_id, episode in block:
            metadata = Episode(
                {}, episode.env_id, episode.seed, episode.success, episode.dr, episode.attrs, episode.final
            )
            self.index.append((episode_id, episode.num_samples, metadata))
            self.rows += episode.num_samples

    def close(self) -> None:
        """Write the last partial chunks, the episode index and the final states, and close the file."""
        for column in self._columns:
            column.finish(self._deflate)
        episodes = [episode for _, _, episode in self.index]
        lengths = np.array([length for _, length, _ in self.index], dtype=np.int64)
        columns = {
            "episode_id": np.array([episode_id for episode_id, _, _ in self.index], dtype=np.int64),
            "start": np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64),
            "num_samples": lengths,
            "env_id": np.array([episode.env_id for episode in episodes], dtype=np.int64),
            "seed": np.array([episode.seed for episode in episodes], dtype=np.int64),
            "success": np.array([bool(episode.success) for episode in episodes], dtype=bool),
        }
        for name in episodes[0].attrs:
            values = np.array([episode.attrs[name] for episode in episodes])
            columns[f"attrs/{name}"] = values.astype(object) if values.dtype.kind == "U" else values
        for name in episodes[0].dr:
            columns[f"dr/{name}"] = np.stack([episode.dr[name] for episode in episodes])
        for name, values in columns.items():
            kind = h5py.string_dtype() if values.dtype == object else None
            self.file.create_dataset(f"episodes/{name}", data=values, dtype=kind)
        for key in episodes[0].final:
            values = np.stack([episode.final[key] for episode in episodes])
            frames = key in self._specs and is_frame(self._specs[key]) and self._compression is not None
            compression = {"chunks": (1, *values.shape[1:]), "compression": self._compression}
            compression["compression_opts"] = self.level
            self.file.create_dataset(f"final/{key}", data=values, **(compression if frames else {}))
        self.file.attrs["total"] = self.rows
        self.file.close()

    def discard(self) -> None:
        """Close and delete the file (an incomplete shard)."""
        if self.file.id.valid:
            self.file.close()
        self.path.unlink(missing_ok=True)

    def _deflate(self, data: bytes) -> bytes:
        """``data`` as the zlib stream HDF5's deflate filter reads."""
        if isal_zlib is not None and 1 <= self.level <= isal_zlib.ISAL_BEST_COMPRESSION:
            return isal_zlib.compress(data, self.level)
        return zlib.compress(data, self.level)


class _Column:
    """``steps/<key>`` of a shard being written: a growing chunked dataset and the rows waiting for a full chunk."""

    def __init__(self, file: h5py.File, key: str, spec: KeySpec, compression: str | None, level: int) -> None:
        self.shape, self.dtype = spec.shape, np.dtype(spec.dtype)
        self.chunk = chunk_rows(spec)
        self.shuffle = compression is not None
        self.dataset = file.create_dataset(
            f"steps/{key}",
            shape=(0, *spec.shape),
            maxshape=(None,) * (1 + len(spec.shape)),  # unlimited: chunk sizes of 1 on a 0-sized axis are legal
            dtype=self.dtype,
            chunks=(self.chunk, *(max(1, size) for size in spec.shape)),
            compression=compression,
            compression_opts=level if compression == "gzip" else None,
            shuffle=self.shuffle,
        )
        self.written = 0
        """Rows in the dataset (a multiple of the chunk length until the last chunk)."""
        self.tail: list[np.ndarray] = []
        self.tail_rows = 0

    def append(self, arrays: list[np.ndarray], rows: int, deflate: Callable[[bytes], bytes]) -> None:
        self.tail += arrays
        self.tail_rows += rows
        if self.tail_rows >= self.chunk:
            self._write(deflate, final=False)

    def finish(self, deflate: Callable[[bytes], bytes]) -> None:
        if self.tail_rows:
            self._write(deflate, final=True)

    def _write(self, deflate: Callable[[bytes], bytes], final: bool) -> None:
        """Write the waiting rows' full chunks (and, if ``final``, the last partial one)."""
        rows = np.concatenate(self.tail) if len(self.tail) > 1 else np.asarray(self.tail[0])
        count = len(rows) if final else len(rows) // self.chunk * self.chunk
        self.dataset.resize(self.written + count, axis=0)
        for first in range(0, count, self.chunk) if rows[:1].size else ():  # a 0-sized row stores no chunk
            chunk = rows[first : first + self.chunk]
            if len(chunk) < self.chunk:  # the shard's last chunk, padded as HDF5 stores edge chunks
                chunk = np.concatenate([chunk, np.zeros((self.chunk - len(chunk), *self.shape), self.dtype)])
            raw = np.ascontiguousarray(chunk, dtype=self.dtype).view(np.uint8)
            if self.shuffle:  # HDF5's shuffle filter: byte j of every element, then byte j + 1...
                raw = deflate(raw.reshape(-1, self.dtype.itemsize).T.tobytes())
            self.dataset.id.write_direct_chunk((self.written + first,) + (0,) * len(self.shape), bytes(raw))
        self.written += count
        self.tail = [rows[count:]] if count < len(rows) else []
        self.tail_rows = len(rows) - count


def read_index(file: h5py.File) -> dict[str, np.ndarray]:
    """A shard's episode index: every column under ``episodes/`` keyed by its path below it (``episode_id``,
    ``start``..., ``attrs/<name>``, ``dr/<asset>/<parameter>``); text columns as ``str`` objects."""
    columns: dict[str, np.ndarray] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset):
            columns[name] = item.asstr()[()] if h5py.check_string_dtype(item.dtype) else item[()]

    file["episodes"].visititems(visit)
    return columns


def index_episode(index: Mapping[str, np.ndarray], row: int, data: dict[str, np.ndarray], final: dict) -> Episode:
    """The episode at ``row`` of a shard's index, with the given per-step ``data`` and ``final`` state."""
    return Episode(
        data=data,
        env_id=int(index["env_id"][row]),
        seed=int(index["seed"][row]),
        success=bool(index["success"][row]),
        dr={name[3:]: np.asarray(values[row]) for name, values in index.items() if name.startswith("dr/")},
        attrs={name[6:]: _python_scalar(values[row]) for name, values in index.items() if name.startswith("attrs/")},
        final=final,
    )


def read_shard_episodes(file: h5py.File, keys: Sequence[str], rows: Sequence[int] | None = None) -> list[Episode]:
    """Episodes of a shard (the index rows ``rows``, default all) with every key in ``keys``; each key's column is
    read once, whole."""
    index = read_index(file)
    rows = range(len(index["episode_id"])) if rows is None else rows
    columns = {key: file["steps"][key][()] for key in keys}
    finals = {key: file["final"][key][()] for key in _final_keys(file)}
    episodes = []
    for row in rows:
        start, stop = int(index["start"][row]), int(index["start"][row] + index["num_samples"][row])
        data = {key: column[start:stop] for key, column in columns.items()}
        episodes.append(index_episode(index, row, data, {key: final[row] for key, final in finals.items()}))
    return episodes


def _final_keys(file: h5py.File) -> list[str]:
    """Keys of the final states a shard holds (``final/<key>``), none if it has none."""
    keys: list[str] = []
    if "final" in file:
        file["final"].visititems(lambda name, item: keys.append(name) if isinstance(item, h5py.Dataset) else None)
    return keys


def _python_scalar(value: Any) -> Any:
    """An index value as a plain Python scalar (bool, int, float or str)."""
    return value.item() if isinstance(value, np.generic) else value
