"""The writing side of :class:`~wam_isaac.data.writer.DatasetWriter`: episodes -> temporary shard -> published shard
and manifest. It runs in a process of its own (:func:`run_writer_process`), so that HDF5, which holds the GIL, never
competes with the simulation loop.

Crash safety: a shard is written as ``.shard_<i>.h5.tmp`` and synced; the manifest that lists it (with its sha256)
is written and synced as ``.manifest.json.tmp``; then the shard is renamed to ``shard_<i>.h5`` and the manifest to
``manifest.json``, back to back. The manifest therefore never lists a shard that is missing or incomplete.

Several writing processes: process ``w`` of ``num_writers`` receives episodes ``w, w + num_writers, ...`` (the
parent deals them out in turn) and writes shards ``w, w + num_writers, ...``. The manifest on disk is the list of
published shards: a process publishing a shard reads it, adds its shard and replaces it, holding a lock shared by
all writing processes, so no publication is lost.

Parent death: the writer process reads episodes from a pipe whose only write end is the parent's, and checks that
its parent is alive while it waits and right before publishing a shard. When the parent dies (SIGKILL), the writer
process deletes its temporary shard and exits without publishing anything more.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import pickle
import resource
import signal
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .episode import Episode, unpack_episode
from .manifest import (
    MANIFEST_NAME,
    SCHEMA_VERSION,
    fsync_dir,
    fsync_file,
    prepare_json,
    sha256_file,
    shard_name,
    temp_shard_name,
    write_json_atomic,
)
from .shards import EpisodeEncoder
from .shared_ring import RingReader
from .specs import KeySpec

POLL_SECONDS = 0.2
"""How often the writer process checks its parent and the stop flag while it waits for an episode or the publication
lock [s]."""

NICENESS = 5
"""How much a writing process lowers its scheduling priority: when the cores are all busy, the simulation goes first
and the writers catch up from the queue (whose bound then holds the simulation back if they cannot)."""


EPISODE_MESSAGE = b"E"
"""Prefix of a message carrying a packed episode (one larger than the shared memory)."""
SHARED_EPISODE_MESSAGE = b"S"
"""Prefix of a message naming where in the shared memory a packed episode lies (a :data:`RECORD`)."""
CLOSE_MESSAGE = b"C"
"""The message asking the writing process to publish its last shard, mark the manifest complete and exit."""


@dataclass(frozen=True)
class SinkConfig:
    """Everything the writing process needs to know about the dataset (picklable)."""

    out_dir: Path
    """Dataset directory (exists, writable)."""
    task_id: str
    """Task the data comes from."""
    env_config_hash: str
    """Hash of the env config."""
    env_args: dict[str, Any]
    """robomimic's ``env_args``."""
    key_specs: dict[str, KeySpec]
    """Per-step keys with shapes, dtypes and units."""
    episodes_per_shard: int
    """Episodes per shard file."""
    compression: str | None
    """HDF5 filter of the per-step datasets."""
    compression_level: int | None
    """gzip level (None for the other filters)."""
    chunk_steps: int
    """HDF5 chunk length along time [steps]."""
    created_at: str
    """ISO time the dataset was started."""
    created_with: dict[str, str]
    """Package versions recorded in the manifest."""
    num_writers: int = 1
    """Writing processes; process ``w`` writes episodes and shards ``w, w + num_writers, ...``."""


class SinkStopped(Exception):
    """The parent died or asked to stop before a shard could be published; the temporary shard was deleted."""


class ShardSink:
    """Appends episodes to the current temporary shard and publishes complete shards with their manifest.

    Args:
        config: the dataset.
        dropped_episodes: returns the current count of dropped episodes (for the manifest's totals).
        may_publish: returns False once the parent has died or asked to stop; checked right before a publication.
        writer_index: which of the ``config.num_writers`` writing processes this sink is; its ``i``-th episode is
            episode ``writer_index + i * num_writers`` and its ``j``-th shard is shard
            ``writer_index + j * num_writers``.
        publish_lock: a lock shared by the writing processes, held while a shard and the manifest are published
            (None with a single writer).
    """

    def __init__(
        self,
        config: SinkConfig,
        dropped_episodes: Callable[[], int] = lambda: 0,
        may_publish: Callable[[], bool] = lambda: True,
        writer_index: int = 0,
        publish_lock: Any = None,
    ) -> None:
        if not 0 <= writer_index < config.num_writers:
            raise ValueError(f"writer_index must be in [0, {config.num_writers}), got {writer_index}")
        self.config = config
        self.dr_keys: dict[str, dict[str, Any]] | None = None
        """Shapes and dtypes of the DR parameters, read off the first episode."""
        self.manifest: dict[str, Any] = {}
        """The last manifest built."""
        self._dropped_episodes = dropped_episodes
        self._may_publish = may_publish
        self._publish_lock = publish_lock
        self._encoder = EpisodeEncoder(config.compression, config.compression_level, config.chunk_steps)
        self._shards_written = 0
        self._shard_file: h5py.File | None = None
        self._shard_ids: list[int] = []
        self._shard_lengths: list[int] = []
        self._shard_env_ids: list[int] = []
        self._shard_successes = 0
        self._next_episode = writer_index
        self._writer_index = writer_index

    def write(self, episode: Episode) -> None:
        """Append ``episode`` to the current shard; publish the shard once it holds ``episodes_per_shard``."""
        self.append(episode)
        if len(self._shard_lengths) == self.config.episodes_per_shard:
            self.complete_shard(complete=False)

    def append(self, episode: Episode) -> None:
        """Append ``episode`` to the current temporary shard, creating it if needed."""
        if self.dr_keys is None:
            self.dr_keys = dr_keys_of(episode)
        if self._shard_file is None:
            # HDF5 1.10+ file format: compact group and attribute storage, files ~2.4x smaller and ~7 % less CPU
            # per episode than the 1.8-compatible default (any h5py of the last decade reads it)
            path = self.config.out_dir / temp_shard_name(self.shard_index)
            self._shard_file = h5py.File(path, "w", libver=("v110", "latest"))
            data = self._shard_file.create_group("data")
            data.attrs.update(
                {
                    "env_args": json.dumps(self.config.env_args),
                    "task_id": self.config.task_id,
                    "env_config_hash": self.config.env_config_hash,
                    "schema_version": SCHEMA_VERSION,
                    "shard_index": self.shard_index,
                    "total": 0,
                }
            )
        self._encoder.write(self._shard_file["data"], self._next_episode, episode)
        self._shard_ids.append(self._next_episode)
        self._next_episode += self.config.num_writers
        self._shard_lengths.append(episode.num_samples)
        self._shard_env_ids.append(int(episode.env_id))
        self._shard_successes += int(episode.success)

    @property
    def has_shard(self) -> bool:
        """Whether a shard is being written (episodes appended since the last publication)."""
        return self._shard_file is not None

    @property
    def shard_index(self) -> int:
        """Index of the shard this sink writes next (or is writing)."""
        return self._writer_index + self._shards_written * self.config.num_writers

    def complete_shard(self, complete: bool) -> None:
        """Close the current shard, sync it, and publish it together with a manifest that lists it beside the shards
        published so far (or, without a current shard, just the manifest).

        The shard and the new manifest are both written and synced under temporary names first, then renamed one
        right after the other, so that a kill leaves an unlisted complete shard only if it lands between those two
        renames (the manifest never lists a shard that is not there).

        Raises:
            SinkStopped: the parent died or asked to stop (checked right before the renames); nothing was published.
        """
        if self._shard_file is None:
            self._check_may_publish()
            with self._publishing():
                self.write_manifest(complete)
            return
        index = self.shard_index
        self._shard_file["data"].attrs["total"] = sum(self._shard_lengths)
        self._shard_file.close()
        self._shard_file = None
        temp, final = self.config.out_dir / temp_shard_name(index), self.config.out_dir / shard_name(index)
        fsync_file(temp)
        shard = {
            "name": final.name,
            "sha256": sha256_file(temp),
            "episodes": len(self._shard_lengths),
            "transitions": sum(self._shard_lengths),
            "successes": self._shard_successes,
            "episode_ids": list(self._shard_ids),
            "episode_lengths": list(self._shard_lengths),
            "env_ids": list(self._shard_env_ids),
        }
        manifest_path = self.config.out_dir / MANIFEST_NAME
        with self._publishing():
            shards = [*published_shards(self.config.out_dir), shard]
            manifest_temp = prepare_json(manifest_path, self.build_manifest(complete, shards))
            self._check_may_publish(manifest_temp)
            os.replace(temp, final)
            os.replace(manifest_temp, manifest_path)
            fsync_dir(self.config.out_dir)
        self._shards_written += 1
        self._shard_ids, self._shard_lengths, self._shard_env_ids, self._shard_successes = [], [], [], 0

    @contextlib.contextmanager
    def _publishing(self):
        """Hold the writing processes' publication lock (if any), checking while waiting that publishing is still
        wanted."""
        if self._publish_lock is None:
            yield
            return
        while not self._publish_lock.acquire(timeout=POLL_SECONDS):
            self._check_may_publish()
        try:
            yield
        finally:
            self._publish_lock.release()

    def discard_shard(self) -> None:
        """Delete the incomplete shard; the episodes in it are lost, the manifest is unchanged."""
        if self._shard_file is not None:
            self._shard_file.close()
            self._shard_file = None
        (self.config.out_dir / temp_shard_name(self.shard_index)).unlink(missing_ok=True)

    def write_manifest(self, complete: bool) -> None:
        """Replace ``manifest.json`` by one describing the shards published so far (by any writing process)."""
        manifest = self.build_manifest(complete, published_shards(self.config.out_dir))
        write_json_atomic(self.config.out_dir / MANIFEST_NAME, manifest)

    def build_manifest(self, complete: bool, shards: list[dict[str, Any]]) -> dict[str, Any]:
        """The manifest describing ``shards``; also kept as :attr:`manifest`."""
        config = self.config
        self.manifest = {
            "schema_version": SCHEMA_VERSION,
            "format": "wam_isaac.hdf5 (robomimic layout)",
            "task_id": config.task_id,
            "env_config_hash": config.env_config_hash,
            "env_args": config.env_args,
            "complete": complete,
            "compression": config.compression,
            "keys": {key: spec.to_json(key) for key, spec in config.key_specs.items()},
            "dr_keys": dict(self.dr_keys or {}),
            "shards": sorted(shards, key=lambda shard: shard["name"]),
            "totals": {
                "episodes": sum(shard["episodes"] for shard in shards),
                "transitions": sum(shard["transitions"] for shard in shards),
                "successes": sum(shard["successes"] for shard in shards),
                "dropped_episodes": self._dropped_episodes(),
            },
            "created_with": config.created_with,
            "created_at": config.created_at,
            "updated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        return self.manifest

    def _check_may_publish(self, manifest_temp: Path | None = None) -> None:
        """Raise :class:`SinkStopped` after deleting the temporary files if the parent died or asked to stop."""
        if not self._may_publish():
            if manifest_temp is not None:
                manifest_temp.unlink(missing_ok=True)
            self.discard_shard()
            raise SinkStopped("the parent died or asked to stop: nothing more is published")


def published_shards(out_dir: Path) -> list[dict[str, Any]]:
    """The shards the manifest in ``out_dir`` lists (none if there is no manifest yet)."""
    try:
        return json.loads((out_dir / MANIFEST_NAME).read_text())["shards"]
    except FileNotFoundError:
        return []


def dr_keys_of(episode: Episode) -> dict[str, dict[str, Any]]:
    """Shapes and dtypes of an episode's DR parameters, as the manifest's ``dr_keys`` lists them."""
    return {
        name: {"shape": list(np.shape(value)), "dtype": np.asarray(value).dtype.name}
        for name, value in episode.dr.items()
    }


def run_writer_process(
    sink_class: type[ShardSink],
    config: SinkConfig,
    writer_index: int,
    publish_lock: Any,
    episodes: Connection,
    results: Connection,
    free_slots: Any,
    stop: Any,
    dropped_episodes: Any,
    ring_name: str,
    ring_consumed: Any,
) -> None:
    """Main function of writing process ``writer_index`` (see :class:`ShardSink`): receive messages from
    ``episodes`` until :data:`CLOSE_MESSAGE`, the ``stop`` event, or the parent's death; report ``("closed",
    peak resident memory [bytes])`` (its last shard published; the parent then marks the manifest complete),
    ``("stopped",)`` or ``("error", exception, traceback)`` on ``results``.

    Messages are :data:`SHARED_EPISODE_MESSAGE` followed by where the packed episode lies in the shared memory
    ``ring_name`` (see :mod:`~wam_isaac.data.shared_ring`; ``ring_consumed`` is its shared counter),
    :data:`EPISODE_MESSAGE` followed by a :func:`~wam_isaac.data.episode.pack_episode` payload, or
    :data:`CLOSE_MESSAGE`. Each received episode frees one of the parent's ``free_slots`` (a semaphore bounding the
    episodes in flight) and its shared memory.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it calls abort() or close()
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    parent_pid = os.getppid()
    parent = multiprocessing.parent_process()

    def parent_alive() -> bool:
        return os.getppid() == parent_pid and (parent is None or parent.is_alive())

    sink = sink_class(
        config,
        lambda: dropped_episodes.value,
        lambda: parent_alive() and not stop.is_set(),
        writer_index=writer_index,
        publish_lock=publish_lock,
    )
    ring = RingReader(ring_name, ring_consumed)
    try:
        while True:
            if stop.is_set() or not parent_alive():
                sink.discard_shard()
                _report(results, ("stopped",))
                return
            if not episodes.poll(POLL_SECONDS):
                continue
            try:
                message = episodes.recv_bytes()
            except EOFError:  # the parent closed the pipe without "close": it died or it is aborting
                sink.discard_shard()
                _report(results, ("stopped",))
                return
            if message == CLOSE_MESSAGE:
                if sink.has_shard:
                    sink.complete_shard(complete=False)
                _report(results, ("closed", peak_rss()))
                return
            kind, body = message[:1], memoryview(message)[1:]
            payload = ring.take(body) if kind == SHARED_EPISODE_MESSAGE else body
            free_slots.release()
            sink.write(unpack_episode(payload))
    except SinkStopped:
        _report(results, ("stopped",))
    except BaseException as error:  # reported to the parent, which raises it as WriterError
        sink.discard_shard()
        _report(results, ("error", _picklable(error), traceback.format_exc()))
    finally:
        ring.close()


def peak_rss() -> int:
    """This process's peak resident memory [bytes]: ``VmHWM`` on Linux, which starts afresh at ``exec`` (unlike
    ``ru_maxrss``, which a spawned process inherits from the fork of its parent's image), else ``ru_maxrss``."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        status = Path("/proc/self/status").read_text()
        return int(status.split("VmHWM:")[1].split()[0]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def _report(results: Connection, message: tuple) -> None:
    with contextlib.suppress(OSError):  # the parent is gone: nobody is left to tell
        results.send(message)


def _picklable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a RuntimeError naming it (the parent must be able to raise it)."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
