"""Stream episodes to sharded HDF5 files on a background thread, crash-safe.

The simulation loop only enqueues finished episodes (:meth:`DatasetWriter.write`); a thread writes them. The queue
holds at most ``max_queued_episodes`` episodes and :meth:`~DatasetWriter.write` blocks while it is full, so memory
stays bounded by ``max_queued_episodes + 1`` episodes (plus HDF5's chunk cache) whatever the dataset size.

Crash safety: a shard is written as ``.shard_<i>.h5.tmp`` and synced; the manifest that lists it (with its sha256)
is written and synced as ``.manifest.json.tmp``; then the shard is renamed to ``shard_<i>.h5`` and the manifest to
``manifest.json``, back to back. The manifest therefore never lists a shard that is missing or incomplete. A SIGKILL
leaves complete shards that the manifest describes, and at most a removable ``.tmp`` shard and ``.tmp`` manifest;
only a kill landing between the two consecutive renames leaves one complete shard that the manifest does not list
yet (readers ignore it; :func:`~wam_isaac.data.reader.unlisted_files` names it).
On an exception or Ctrl-C inside ``with DatasetWriter(...)``, the temporary shard is deleted and the queued episodes
are discarded. The HDF5 layout is described in :mod:`wam_isaac.data.shards`, the manifest in
:mod:`wam_isaac.data.manifest`.

Output directory: the writer refuses a non-empty directory unless ``overwrite=True``, and checks that it can write
there before anything is written. With ``overwrite``, the old dataset's files (manifest and shards, nothing else) are
deleted only when the new dataset starts to exist (first episode written, or :meth:`~DatasetWriter.close`): a run
that fails before producing data leaves the old dataset untouched.
"""

from __future__ import annotations

import json
import os
import queue
import tempfile
import threading
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import h5py
import numpy as np

from .episode import Episode
from .errors import DatasetExistsError, DatasetNotWritableError, WriterError
from .manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    fsync_dir,
    fsync_file,
    is_dataset_file,
    package_versions,
    prepare_json,
    sha256_file,
    shard_name,
    temp_shard_name,
    write_json_atomic,
)
from .shards import write_episode
from .specs import KeySpec, validate_key_specs

COMPRESSIONS = ("gzip", "lzf", None)
"""HDF5 filters the writer accepts: gzip (readable everywhere), lzf (faster, h5py only), or none."""

_CLOSE = object()
_ABORT = object()


class DatasetWriter:
    """Writes episodes to ``out_dir`` as HDF5 shards of ``episodes_per_shard`` episodes plus ``manifest.json``.

    Args:
        out_dir: dataset directory; created if missing.
        task_id: task the data comes from, e.g. ``WAM-Push-Cube``.
        env_config_hash: hash of the env config (see :func:`wam_isaac.data.manifest.config_hash`).
        key_specs: per-step keys with shapes, dtypes and units; every episode must match them exactly.
        episodes_per_shard: episodes per shard file; the last shard may hold fewer.
        compression: HDF5 filter of the per-step datasets: ``"gzip"``, ``"lzf"`` or None.
        compression_level: gzip level 0-9 (None: 1, fast); must be None for the other filters.
        chunk_steps: HDF5 chunk length along time [steps]; a window read decompresses the chunks it touches.
        max_queued_episodes: capacity of the queue between the caller and the writing thread.
        overwrite: replace the dataset in a non-empty ``out_dir``.
        env_args: robomimic's ``env_args`` (``env_name``, ``type``, ``env_kwargs``); default names the task.

    Raises:
        ValueError: an argument is invalid (nothing is written or deleted).
        DatasetExistsError: ``out_dir`` is not empty and ``overwrite`` is False.
        DatasetNotWritableError: ``out_dir`` cannot be created or written to.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        task_id: str,
        env_config_hash: str,
        key_specs: Mapping[str, KeySpec],
        *,
        episodes_per_shard: int = 100,
        compression: str | None = "gzip",
        compression_level: int | None = None,
        chunk_steps: int = 256,
        max_queued_episodes: int = 32,
        overwrite: bool = False,
        env_args: Mapping[str, Any] | None = None,
    ) -> None:
        if not task_id or not env_config_hash:
            raise ValueError("task_id and env_config_hash must be non-empty strings")
        self.key_specs = validate_key_specs(key_specs)
        for name, value in (
            ("episodes_per_shard", episodes_per_shard),
            ("chunk_steps", chunk_steps),
            ("max_queued_episodes", max_queued_episodes),
        ):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if compression not in COMPRESSIONS:
            raise ValueError(f"compression must be one of {COMPRESSIONS}, got {compression!r}")
        if compression == "gzip":
            compression_level = 1 if compression_level is None else compression_level
            if not 0 <= compression_level <= 9:
                raise ValueError(f"gzip compression_level must be in 0..9, got {compression_level}")
        elif compression_level is not None:
            raise ValueError(f"compression_level applies to gzip only, not to {compression!r}")
        self.env_args = dict(env_args or {"env_name": task_id, "type": 2, "env_kwargs": {}})
        json.dumps(self.env_args)  # raises TypeError now rather than in the writing thread
        self.out_dir = Path(out_dir)
        self.task_id = task_id
        self.env_config_hash = env_config_hash
        self.episodes_per_shard = episodes_per_shard
        self.compression = compression
        self.compression_level = compression_level
        self.chunk_steps = chunk_steps
        self.overwrite = overwrite
        self._check_out_dir()

        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queued_episodes)
        self._thread = threading.Thread(target=self._run, name=f"DatasetWriter({self.out_dir})", daemon=True)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._error: BaseException | None = None
        self._dropped = 0
        self._dr_keys: dict[str, dict[str, Any]] | None = None
        self._shards: list[dict[str, Any]] = []
        self._shard_file: h5py.File | None = None
        self._shard_lengths: list[int] = []
        self._shard_successes = 0
        self._next_episode = 0
        self._created_at = datetime.now(UTC).isoformat(timespec="seconds")
        self._created_with = package_versions()
        self.manifest: dict[str, Any] = {}
        """The last manifest written (the final one after :meth:`close`)."""

    # ------------------------------------------------------------------ caller side

    @property
    def max_queued_episodes(self) -> int:
        """Capacity of the queue between the caller and the writing thread [episodes]."""
        return self._queue.maxsize

    def write(self, episode: Episode) -> None:
        """Enqueue one episode; blocks while the queue is full.

        Raises:
            ValueError: the episode's keys, shapes or dtypes differ from ``key_specs`` or from earlier DR keys.
            WriterError: the writing thread failed (the cause is chained) or the writer is closed.
        """
        self._check_open()
        self._validate(episode)
        self._start()
        self._put(episode)

    def write_many(self, episodes: Iterable[Episode]) -> None:
        """Enqueue several episodes in order (see :meth:`write`)."""
        for episode in episodes:
            self.write(episode)

    def add_dropped(self, count: int) -> None:
        """Count ``count`` more dropped episodes (blow-ups) in the manifest's ``totals.dropped_episodes``."""
        self._check_open()
        with self._lock:
            self._dropped += int(count)

    def close(self) -> dict[str, Any]:
        """Write the queued episodes and the last partial shard, mark the manifest complete and return it.

        Raises:
            WriterError: the writing thread failed.
        """
        if self._closed:
            return self.manifest
        self._check_open()
        self._start()
        self._put(_CLOSE)
        self._thread.join()
        self._closed = True
        self._raise_thread_error()
        return self.manifest

    def abort(self) -> None:
        """Stop without completing the current shard: its temporary file is deleted, queued episodes are discarded
        and the manifest keeps describing the complete shards only. The old dataset is untouched if no episode was
        written. An error of the writing thread is raised as :class:`WriterError`."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        while True:  # make room for the abort marker; the caller is the only producer
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._queue.put(_ABORT)
        self._thread.join()
        self._raise_thread_error()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc is None:
            self.close()
            return
        try:
            self.abort()
        except WriterError as writer_error:
            exc.add_note(f"the dataset writer also failed: {writer_error.__cause__!r}")

    def _put(self, item: Any) -> None:
        """Enqueue ``item``, blocking while the queue is full, unless the writing thread has died."""
        while True:
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                self._raise_thread_error()

    def _check_open(self) -> None:
        if self._closed:
            raise WriterError(f"the writer of {self.out_dir} is closed")
        self._raise_thread_error()

    def _raise_thread_error(self) -> None:
        if self._error is not None:
            raise WriterError(f"writing {self.out_dir} failed: {self._error!r}") from self._error

    def _validate(self, episode: Episode) -> None:
        if episode.data.keys() != self.key_specs.keys():
            missing = sorted(self.key_specs.keys() - episode.data.keys())
            raise ValueError(
                f"episode keys differ from key_specs: missing {missing}, "
                f"unknown {sorted(episode.data.keys() - self.key_specs.keys())}"
            )
        length = episode.num_samples
        if length < 1:
            raise ValueError("an episode needs at least one step")
        for key, spec in self.key_specs.items():
            array = episode.data[key]
            if array.shape != (length, *spec.shape) or array.dtype != np.dtype(spec.dtype):
                raise ValueError(
                    f"episode[{key!r}] is {array.dtype}{list(array.shape)}, "
                    f"expected {spec.dtype}{[length, *spec.shape]}"
                )
        dr_keys = {
            name: {"shape": list(np.shape(value)), "dtype": np.asarray(value).dtype.name}
            for name, value in episode.dr.items()
        }
        with self._lock:
            if self._dr_keys is None:
                self._dr_keys = dr_keys
            elif dr_keys != self._dr_keys:
                raise ValueError(f"episode DR parameters {dr_keys} differ from the first episode's {self._dr_keys}")

    def _check_out_dir(self) -> None:
        check_out_dir(self.out_dir, self.overwrite)

    def _start(self) -> None:
        """Replace the old dataset (if any) by an empty one and start the writing thread, once."""
        if self._started:
            return
        self._started = True
        if self.overwrite:
            for path in self.out_dir.iterdir():
                if path.is_file() and is_dataset_file(path.name):
                    path.unlink()
            fsync_dir(self.out_dir)
        self._write_manifest(complete=False)
        self._thread.start()

    # ------------------------------------------------------------------ writing thread

    def _run(self) -> None:
        try:
            while True:
                item = self._queue.get()
                if item is _ABORT:
                    self._discard_shard()
                    return
                if item is _CLOSE:
                    self._complete_shard(complete=True)
                    return
                self._append(item)
                if len(self._shard_lengths) == self.episodes_per_shard:
                    self._complete_shard(complete=False)
        except BaseException as error:
            self._error = error
            self._discard_shard()

    def _append(self, episode: Episode) -> None:
        if self._shard_file is None:
            self._shard_file = h5py.File(self.out_dir / temp_shard_name(len(self._shards)), "w")
            data = self._shard_file.create_group("data")
            data.attrs.update(
                {
                    "env_args": json.dumps(self.env_args),
                    "task_id": self.task_id,
                    "env_config_hash": self.env_config_hash,
                    "schema_version": SCHEMA_VERSION,
                    "shard_index": len(self._shards),
                    "total": 0,
                }
            )
        write_episode(
            self._shard_file["data"],
            self._next_episode,
            episode,
            self.compression,
            self.compression_level,
            self.chunk_steps,
        )
        self._next_episode += 1
        self._shard_lengths.append(episode.num_samples)
        self._shard_successes += int(episode.success)

    def _complete_shard(self, complete: bool) -> None:
        """Close the current shard, sync it, and publish it together with a manifest that lists it.

        The shard and the new manifest are both written and synced under temporary names first, then renamed one
        right after the other, so that a kill leaves an unlisted complete shard only if it lands between those two
        renames (the manifest never lists a shard that is not there).
        """
        if self._shard_file is None:
            self._write_manifest(complete)
            return
        index = len(self._shards)
        self._shard_file["data"].attrs["total"] = sum(self._shard_lengths)
        self._shard_file.close()
        self._shard_file = None
        temp, final = self.out_dir / temp_shard_name(index), self.out_dir / shard_name(index)
        fsync_file(temp)
        self._shards.append(
            {
                "name": final.name,
                "sha256": sha256_file(temp),
                "episodes": len(self._shard_lengths),
                "transitions": sum(self._shard_lengths),
                "successes": self._shard_successes,
                "first_episode": self._next_episode - len(self._shard_lengths),
                "episode_lengths": list(self._shard_lengths),
            }
        )
        self._shard_lengths, self._shard_successes = [], 0
        manifest_path = self.out_dir / MANIFEST_NAME
        manifest_temp = prepare_json(manifest_path, self._build_manifest(complete))
        os.replace(temp, final)
        os.replace(manifest_temp, manifest_path)
        fsync_dir(self.out_dir)

    def _discard_shard(self) -> None:
        """Delete the incomplete shard; the episodes in it are lost, the manifest is unchanged."""
        if self._shard_file is not None:
            self._shard_file.close()
            self._shard_file = None
        (self.out_dir / temp_shard_name(len(self._shards))).unlink(missing_ok=True)

    def _write_manifest(self, complete: bool) -> None:
        write_json_atomic(self.out_dir / MANIFEST_NAME, self._build_manifest(complete))

    def _build_manifest(self, complete: bool) -> dict[str, Any]:
        """The manifest describing the complete shards so far; also kept as :attr:`manifest`."""
        with self._lock:
            dropped, dr_keys = self._dropped, dict(self._dr_keys or {})
        now = datetime.now(UTC).isoformat(timespec="seconds")
        self.manifest = {
            "schema_version": SCHEMA_VERSION,
            "format": "wam_isaac.hdf5 (robomimic layout)",
            "task_id": self.task_id,
            "env_config_hash": self.env_config_hash,
            "env_args": self.env_args,
            "complete": complete,
            "compression": self.compression,
            "keys": {key: spec.to_json(key) for key, spec in self.key_specs.items()},
            "dr_keys": dr_keys,
            "shards": list(self._shards),
            "totals": {
                "episodes": sum(shard["episodes"] for shard in self._shards),
                "transitions": sum(shard["transitions"] for shard in self._shards),
                "successes": sum(shard["successes"] for shard in self._shards),
                "dropped_episodes": dropped,
            },
            "created_with": self._created_with,
            "created_at": self._created_at,
            "updated_at": now,
        }
        return self.manifest


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuse a non-empty directory without ``overwrite``; prove the directory writable (creating it if missing).
    Deletes nothing.

    Raises:
        DatasetExistsError: ``out_dir`` is not empty and ``overwrite`` is False.
        DatasetNotWritableError: ``out_dir`` is not a directory, or cannot be created or written to.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetNotWritableError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise DatasetExistsError(f"{out_dir} is not empty: pass --overwrite to replace the dataset in it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise DatasetNotWritableError(f"cannot write to {out_dir}: {error.strerror or error}") from error
