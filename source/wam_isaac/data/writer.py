"""Write episodes to columnar HDF5 shards from a background thread, crash-safe; continue a dataset (resume).

The caller's :meth:`DatasetWriter.write` only validates an episode and adds it to the pending block (no copy: the
caller must not modify an episode's arrays after handing it over; the collector never does). Once the block holds
``block_bytes`` of steps, or a shard's worth of episodes, it goes through a queue of ``max_queued_blocks`` to one
writing thread, which appends it to the shard being written (one concatenation, shuffle, deflate and direct chunk write
per key and chunk: see :mod:`wam_isaac.data.shards`) and publishes complete shards. A thread suffices: its cost per
transition is a few byte copies plus deflate (python-isal's deflate releases the GIL, which its own threaded gzip
relies on), and there is no HDF5 call per episode any more; the shared-memory ring, the writing processes and their
publication lock of schema 2 are gone.
Memory: at most ``(max_queued_blocks + 2) * block_bytes`` plus less than one chunk per key, whatever the dataset size.

Crash safety: a shard is written as ``.shard_<i>.h5.tmp``, closed and fsynced; the manifest that lists it (with its
sha256) is written and fsynced as ``.manifest.json.tmp``; then the shard is renamed to ``shard_<i>.h5`` and the
manifest to ``manifest.json``, back to back, and the directory fsynced. The manifest therefore never lists a shard that
is missing or incomplete, whenever the process is killed (SIGKILL included: the thread dies with it). Only a kill
between the two renames leaves a complete shard that the manifest does not list (readers ignore it,
:func:`~wam_isaac.data.reader.unlisted_files` names it, a resumed run deletes it). On an exception or Ctrl-C inside
``with DatasetWriter(...)``, the temporary shard is deleted and the manifest keeps describing the complete shards.

Starting and resuming (see :func:`~wam_isaac.data.dataset_dir.begin_segment`): a new dataset gets its manifest (no
shard yet) when the writer is created, so a run killed before its first shard still leaves a dataset ``wam inspect
--verify`` accepts; with ``resume=True`` the writer continues the manifest in ``out_dir`` (same task, env-config hash
and keys required): shard indices and episode ids continue after the listed ones, unlisted files are deleted.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .dataset_dir import check_out_dir, check_same_dataset, delete_unlisted_files, new_manifest, utc_now
from .episode import Episode
from .errors import ManifestError, WriterError
from .manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    fsync_dir,
    fsync_file,
    load_manifest,
    prepare_json,
    sha256_file,
    shard_name,
    temp_shard_name,
    write_json_atomic,
)
from .shards import ShardWriter
from .specs import KeySpec, validate_key_specs

BLOCK_BYTES = 4 << 20
"""Default size of a block of steps handed to the writing thread at once [bytes]: large enough that the work per block
(a few calls per key) is negligible per episode, small enough that a few blocks in memory do not matter and that
closing the writer (the last block, the episodes still running) is quick."""

TRANSITIONS_PER_SHARD = 1 << 17
"""Default size of a shard [transitions] (~130 MB of WAM-Push-Cube steps before compression): large enough that the
fixed cost of a shard (a file, ~90 datasets, fsync, sha256) is small per transition, small enough that a kill loses
little."""

NICENESS = 5
"""How much the writing thread lowers its scheduling priority: when the cores are all busy, the simulation goes first
and the writer catches up from its queue (whose bound then holds the simulation back if it cannot)."""

QUEUE_POLL_SECONDS = 0.1
"""How often a caller blocked on a full queue checks whether the writing thread failed [s]."""


class DatasetWriter:
    """Writes episodes to ``out_dir`` as shards of about ``transitions_per_shard`` transitions (or of
    ``episodes_per_shard`` episodes) plus ``manifest.json``.

    Args:
        out_dir: dataset directory; created if missing.
        task_id: task the data comes from, e.g. ``WAM-Push-Cube``.
        env_config_hash: hash of the env config (see :func:`wam_isaac.data.manifest.config_hash`).
        key_specs: per-step keys with shapes, dtypes and units; every episode must match them exactly.
        episodes_per_shard: episodes per shard file (the last shard may hold fewer); None: shards end at
            ``transitions_per_shard``. A shard is the unit of crash safety (a kill loses the shard in progress) and
            of a reader's work.
        transitions_per_shard: a shard ends with the episode that brings it to this many transitions [steps]; it
            bounds the fixed cost per shard (file, datasets, fsync, sha256) per transition.
        compression: ``"gzip"`` (HDF5's deflate + shuffle, read everywhere) or None.
        compression_level: gzip level 1-9 (None: 1).
        block_bytes: steps handed to the writing thread at once [bytes].
        max_queued_blocks: blocks waiting for the writing thread, at most; :meth:`write` blocks beyond.
        overwrite: delete the dataset files (manifest, shards) already in ``out_dir`` first.
        resume: continue the dataset in ``out_dir`` (see the module docstring) instead of starting one.
        env_args: robomimic's ``env_args`` (``env_name``, ``type``, ``env_kwargs``); default names the task.

    Raises:
        ValueError: an argument is invalid (nothing is written or deleted).
        DatasetExistsError: ``out_dir`` is not empty and neither ``overwrite`` nor ``resume`` is set.
        DatasetNotWritableError: ``out_dir`` cannot be created or written to.
        ManifestError: ``resume`` and the dataset in ``out_dir`` has another task, config hash or keys.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike,
        task_id: str,
        env_config_hash: str,
        key_specs: Mapping[str, KeySpec],
        *,
        episodes_per_shard: int | None = None,
        transitions_per_shard: int = TRANSITIONS_PER_SHARD,
        compression: str | None = "gzip",
        compression_level: int | None = None,
        block_bytes: int = BLOCK_BYTES,
        max_queued_blocks: int = 2,
        overwrite: bool = False,
        resume: bool = False,
        env_args: Mapping[str, Any] | None = None,
    ) -> None:
        if not task_id or not env_config_hash:
            raise ValueError("task_id and env_config_hash must be non-empty strings")
        self.key_specs = validate_key_specs(key_specs)
        limits = (("episodes_per_shard", 1 if episodes_per_shard is None else episodes_per_shard),)
        for name, value in (*limits, ("transitions_per_shard", transitions_per_shard), ("block_bytes", block_bytes)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if compression not in ("gzip", None):
            raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
        level = 1 if compression_level is None else compression_level
        if not 1 <= level <= 9:
            raise ValueError(f"compression_level must be in 1..9, got {compression_level}")
        self.out_dir = Path(out_dir)
        self.episodes_per_shard, self.transitions_per_shard = episodes_per_shard, transitions_per_shard
        self.block_bytes = block_bytes
        self.compression, self.compression_level = compression, level if compression else None
        env_args = dict(env_args or {"env_name": task_id, "type": 2, "env_kwargs": {}})
        keys = {key: spec.to_json(key) for key, spec in self.key_specs.items()}
        if resume:
            self.manifest = load_manifest(self.out_dir)
            check_same_dataset(self.manifest, task_id, env_config_hash, self.out_dir)
            if self.manifest["keys"] and _shapes(self.manifest["keys"]) != _shapes(keys):
                raise ManifestError(f"{self.out_dir} holds other keys (or shapes, dtypes) than this run's")
            delete_unlisted_files(self.out_dir, self.manifest)
        else:
            check_out_dir(self.out_dir, overwrite)
            (self.out_dir / MANIFEST_NAME).unlink(missing_ok=True)  # first: from here on no stale manifest is left
            delete_unlisted_files(self.out_dir, {"shards": []})
            self.manifest = new_manifest(task_id, env_config_hash, env_args)
        self.manifest.update(keys=keys, compression=compression, compression_level=self.compression_level)
        self.manifest["complete"] = False
        write_json_atomic(self.out_dir / MANIFEST_NAME, self.manifest)
        shards = self.manifest["shards"]
        self._next_shard = max((int(s["name"][6:-3]) for s in shards), default=-1) + 1
        self._next_episode = max((max(s["episode_ids"]) for s in shards if s["episode_ids"]), default=-1) + 1
        self._dropped = int(self.manifest["totals"]["dropped_episodes"])
        self._signature = _signature_of(self.manifest) if self.manifest["totals"]["episodes"] else None
        self._quick_signature: tuple | None = None
        self._layout = [(key, spec.shape, np.dtype(spec.dtype)) for key, spec in self.key_specs.items()]
        self._layouts: dict[int, tuple] = {}
        """The (shape, dtype) of every key, in order, of a valid episode of each length seen."""
        self._shard_attrs = {
            "schema_version": SCHEMA_VERSION,
            "task_id": task_id,
            "env_config_hash": env_config_hash,
            "env_args": json.dumps(self.manifest["env_args"]),
        }
        self._pending: list[tuple[int, Episode]] = []
        self._pending_bytes = 0
        self._in_shard = 0  # episodes of the current shard handed over or pending
        self._in_shard_steps = 0  # and their transitions
        self._step_bytes = sum(np.dtype(s.dtype).itemsize * int(np.prod(s.shape)) for s in self.key_specs.values())
        self._queue: queue.Queue = queue.Queue(max(1, max_queued_blocks))
        self._discarding = False
        self._thread: threading.Thread | None = None
        self._shard: ShardWriter | None = None
        self._error: BaseException | None = None
        self._closed = False

    # ------------------------------------------------------------------ public API

    def write(self, episode: Episode) -> None:
        """Add one episode (it must not be modified afterwards); blocks while the writing thread is behind.

        Raises:
            ValueError: the episode's keys, shapes or dtypes differ from ``key_specs``, or its DR parameters, extra
                attributes or final-state keys from the first episode's.
            WriterError: the writing thread failed (the cause is chained), or the writer is closed.
        """
        self._check_open()
        self._validate(episode)
        self._pending.append((self._next_episode, episode))
        self._next_episode += 1
        self._in_shard += 1
        self._in_shard_steps += episode.num_samples
        self._pending_bytes += episode.num_samples * self._step_bytes
        if self._in_shard == self.episodes_per_shard or self._in_shard_steps >= self.transitions_per_shard:
            self._hand_over(end_shard=True)
        elif self._pending_bytes >= self.block_bytes:
            self._hand_over(end_shard=False)

    def write_many(self, episodes: Iterable[Episode]) -> None:
        """Add several episodes in order (see :meth:`write`)."""
        for episode in episodes:
            self.write(episode)

    def add_dropped(self, count: int) -> None:
        """Count ``count`` more dropped episodes (blow-ups) in the manifest's ``totals.dropped_episodes``."""
        self._check_open()
        self._dropped += int(count)

    def close(self) -> dict[str, Any]:
        """Write the pending episodes and the last partial shard, mark the manifest complete and return it.

        Raises:
            WriterError: the writing thread failed.
        """
        if self._closed:
            return self.manifest
        self._check_open()
        if self._pending or self._in_shard:
            self._hand_over(end_shard=True)
        self._stop_thread()
        self._closed = True
        self._raise_thread_error()
        self._publish(None, complete=True)
        return self.manifest

    def abort(self) -> None:
        """Stop without completing the current shard: its temporary file is deleted, pending episodes are discarded,
        the manifest keeps describing the complete shards only."""
        if self._closed:
            return
        self._closed = True
        self._pending = []
        self._stop_thread(discard=True)
        if self._shard is not None:
            self._shard.discard()
            self._shard = None
        self._raise_thread_error()

    def __enter__(self) -> DatasetWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    # ------------------------------------------------------------------ caller side

    def _validate(self, episode: Episode) -> None:
        if episode.data.keys() != self.key_specs.keys():
            missing = sorted(self.key_specs.keys() - episode.data.keys())
            raise ValueError(f"episode keys differ from key_specs: missing {missing}, unknown "
                             f"{sorted(episode.data.keys() - self.key_specs.keys())}")  # fmt: skip
        length = episode.num_samples
        layout = tuple((array.shape, array.dtype) for array in episode.data.values())
        if layout != self._layouts.get(length):  # a new length (or a mismatch): check key by key
            for key, shape, dtype in self._layout:
                array = episode.data[key]
                if array.shape != (length, *shape) or array.dtype != dtype:
                    expected = f"{dtype}{[length, *shape]}"
                    raise ValueError(f"episode[{key!r}] is {array.dtype}{list(array.shape)}, expected {expected}")
            self._layouts[length] = layout
        if length < 1:
            raise ValueError("an episode needs at least one step")
        quick = _quick_signature(episode)  # cheap to compare: the full one builds JSON-like dicts
        if quick == self._quick_signature:
            return
        signature = _signature(episode)
        if self._signature is None:  # the first episode of the dataset sets what every later one must share
            self._signature = signature
            self.manifest.update(signature)
        elif signature != self._signature:
            name = next(name for name, value in signature.items() if value != self._signature[name])
            raise ValueError(f"episode {name} {signature[name]} differ from the dataset's {self._signature[name]}")
        for key, value in episode.final.items():
            if np.shape(value) != self.key_specs[key].shape:
                raise ValueError(f"final[{key!r}] has shape {np.shape(value)}, expected {self.key_specs[key].shape}")
        self._quick_signature = quick

    def _hand_over(self, end_shard: bool) -> None:
        """Queue the pending episodes (and, if ``end_shard``, the end of the current shard) for the writing thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="wam-dataset-writer", daemon=True)
            self._thread.start()
        item = (self._pending, end_shard)
        self._pending, self._pending_bytes = [], 0
        if end_shard:
            self._in_shard = self._in_shard_steps = 0
        while True:
            self._raise_thread_error()
            try:
                self._queue.put(item, timeout=QUEUE_POLL_SECONDS)
                return
            except queue.Full:
                continue

    def _stop_thread(self, discard: bool = False) -> None:
        if self._thread is None:
            return
        self._discarding = discard  # drop what is still queued: the thread then reaches the end at once
        while self._thread.is_alive():
            try:
                self._queue.put(None, timeout=QUEUE_POLL_SECONDS)
                break
            except queue.Full:
                continue
        self._thread.join()

    def _check_open(self) -> None:
        if self._closed:
            raise WriterError(f"the writer of {self.out_dir} is closed")
        self._raise_thread_error()

    def _raise_thread_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            self._closed = True
            raise WriterError(f"writing {self.out_dir} failed: {error}") from error

    # ------------------------------------------------------------------ writing thread

    def _run(self) -> None:
        with contextlib.suppress(OSError):  # Linux: a thread has its own nice value; the simulation loop goes first
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICENESS)
        try:
            while (item := self._queue.get()) is not None:
                if self._discarding:
                    continue
                block, end_shard = item
                if block:
                    if self._shard is None:
                        self._shard = ShardWriter(
                            self.out_dir / temp_shard_name(self._next_shard),
                            self.key_specs,
                            {**self._shard_attrs, "shard_index": self._next_shard},
                            self.compression,
                            self.compression_level or 1,
                        )
                    self._shard.append(block)
                if end_shard and self._shard is not None:
                    self._complete_shard()
        except BaseException as error:  # raised in the caller's thread as WriterError
            self._error = error
            if self._shard is not None:
                self._shard.discard()
                self._shard = None

    def _complete_shard(self) -> None:
        """Close, sync and publish the current shard with a manifest that lists it."""
        shard, self._shard = self._shard, None
        shard.close()
        fsync_file(shard.path)
        lengths = [length for _, length, _ in shard.index]
        self._publish(
            {
                "name": shard_name(self._next_shard),
                "sha256": sha256_file(shard.path),
                "episodes": len(lengths),
                "transitions": sum(lengths),
                "successes": sum(bool(episode.success) for _, _, episode in shard.index),
                "episode_ids": [episode_id for episode_id, _, _ in shard.index],
                "episode_lengths": lengths,
                "env_ids": [int(episode.env_id) for _, _, episode in shard.index],
            },
            complete=False,
            temp=shard.path,
        )
        self._next_shard += 1

    def _publish(self, shard: dict[str, Any] | None, complete: bool, temp: Path | None = None) -> None:
        """Replace the manifest by one that also lists ``shard`` (renamed from ``temp`` right before)."""
        manifest = dict(self.manifest)
        shards = [*manifest["shards"], *([shard] if shard else [])]
        manifest.update(
            complete=complete,
            shards=shards,
            totals={
                "episodes": sum(s["episodes"] for s in shards),
                "transitions": sum(s["transitions"] for s in shards),
                "successes": sum(s["successes"] for s in shards),
                "dropped_episodes": self._dropped,
            },
            updated_at=utc_now(),
        )
        path = self.out_dir / MANIFEST_NAME
        manifest_temp = prepare_json(path, manifest)
        if temp is not None:
            os.replace(temp, self.out_dir / shard["name"])
        os.replace(manifest_temp, path)
        fsync_dir(self.out_dir)
        self.manifest = manifest


def _signature(episode: Episode) -> dict[str, Any]:
    """What every episode of a dataset must share besides its per-step keys: DR parameter shapes and dtypes, extra
    attribute names, final-state keys (as the manifest lists them)."""
    return {
        "dr_keys": {
            name: {"shape": list(np.shape(value)), "dtype": np.asarray(value).dtype.name}
            for name, value in episode.dr.items()
        },
        "attr_keys": sorted(episode.attrs),
        "final_keys": sorted(episode.final),
    }


def _quick_signature(episode: Episode) -> tuple:
    """A tuple equal for two episodes with the same DR shapes and dtypes, attribute names and final keys and shapes
    (in the same order)."""
    return (
        tuple(
            (name, getattr(value, "shape", None), getattr(value, "dtype", type(value)))
            for name, value in episode.dr.items()
        ),
        tuple(episode.attrs),
        tuple((key, getattr(value, "shape", None)) for key, value in episode.final.items()),
    )


def _signature_of(manifest: Mapping[str, Any]) -> dict[str, Any]:
    """The :func:`_signature` a dataset's episodes share, from its manifest."""
    return {name: manifest[name] for name in ("dr_keys", "attr_keys", "final_keys")}


def _shapes(keys: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple]:
    return {key: (tuple(entry["shape"]), entry["dtype"]) for key, entry in keys.items()}
