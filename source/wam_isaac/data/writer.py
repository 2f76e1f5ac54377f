"""Stream episodes to sharded HDF5 files from a separate writing process, crash-safe.

The simulation loop only hands finished episodes over (:meth:`DatasetWriter.write` validates them and copies them
into a ring buffer in shared memory, about 0.1 ms for 50 small arrays, and pipes a few bytes saying where they lie;
see :mod:`wam_isaac.data.shared_ring`); ``num_writers`` processes started with the ``spawn`` method write them,
dealt out in turn, each to shards of its own (see :mod:`wam_isaac.data.shard_sink`). Two writers by default: HDF5
costs ~0.2 ms per dataset (an episode has ~60), so the episodes still running when generation ends (one per env)
take seconds to write, and two processes halve that wait; during generation they share the cores the simulation
leaves free (they run at lower priority). As with any spawned process, a script that creates a writer
needs Python's ``if __name__ == "__main__":`` guard (``wam generate`` has it). HDF5 holds the GIL while it writes
and compresses, so a writing *thread* would steal time from the simulation; the process does not. At most
``max_queued_episodes`` episodes, in at most ``max_queued_bytes`` of shared memory, are in flight between the caller
and the writing process, and :meth:`~DatasetWriter.write` blocks while that many are, so memory stays bounded by
``max_queued_bytes`` plus one episode on each side (plus HDF5's chunk cache) whatever the dataset size. An episode
larger than ``max_queued_bytes`` is piped instead (slower: the caller waits until the writing process reads it).

Crash safety: a shard is written as ``.shard_<i>.h5.tmp`` and synced; the manifest that lists it (with its sha256)
is written and synced as ``.manifest.json.tmp``; then the shard is renamed to ``shard_<i>.h5`` and the manifest to
``manifest.json``, back to back. The manifest therefore never lists a shard that is missing or incomplete. A SIGKILL
of the caller's process leaves complete shards that the manifest describes: the writing process notices that its
parent died (end of the pipe, parent liveness checked every 0.2 s and right before each publication), deletes its
temporary shard and exits without publishing anything more; only a kill landing between the two consecutive renames
leaves one complete shard that the manifest does not list yet (readers ignore it;
:func:`~wam_isaac.data.reader.unlisted_files` names it). A killed writing process is raised as
:class:`~wam_isaac.data.errors.WriterError` at the next call.
On an exception or Ctrl-C inside ``with DatasetWriter(...)``, the temporary shard is deleted and the episodes in
flight are discarded (the writing process ignores SIGINT: the caller decides). The HDF5 layout is described in
:mod:`wam_isaac.data.shards`, the manifest in :mod:`wam_isaac.data.manifest`.

Output directory: the writer refuses a non-empty directory unless ``overwrite=True``, and checks that it can write
there before anything is written. With ``overwrite``, the old dataset's files (manifest and shards, nothing else) are
deleted only when the new dataset starts to exist (first episode written, or :meth:`~DatasetWriter.close`): a run
that fails before producing data leaves the old dataset untouched.
"""

from __future__ import annotations

import json
import multiprocessing
import multiprocessing.connection
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from .episode import Episode, PackedEpisode
from .errors import DatasetExistsError, DatasetNotWritableError, WriterError
from .manifest import TEMP_SHARD_NAME, fsync_dir, is_dataset_file, package_versions
from .shard_sink import (
    CLOSE_MESSAGE,
    EPISODE_MESSAGE,
    SHARED_EPISODE_MESSAGE,
    ShardSink,
    SinkConfig,
    dr_keys_of,
    run_writer_process,
)
from .shared_ring import RingWriter
from .specs import KeySpec, validate_key_specs

COMPRESSIONS = ("gzip", "lzf", None)
"""HDF5 filters the writer accepts: gzip (readable everywhere), lzf (faster, h5py only), or none."""

POLL_SECONDS = 0.1
"""How often a blocked caller checks whether the writing process failed [s]."""

RING_POLL_SECONDS = 0.001
"""How often a caller waiting for shared memory checks whether the writing process released some [s]."""

STOP_TIMEOUT = 30.0
"""How long :meth:`DatasetWriter.abort` waits for the writing process to delete its temporary shard and exit [s]."""


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
        max_queued_episodes: episodes in flight between the caller and the writing process, at most. Parallel
            envs end their episodes in waves (envs reset together time out together): a queue that holds a wave
            lets the writing process work it off while the simulation runs on, instead of stalling it (measured on
            WAM-Push-Cube, 256 envs: 23 ms of waiting per step with 32, none with 1024).
        max_queued_bytes: size of the shared memory the episodes in flight are copied to [bytes], split evenly
            between the writing processes; what bounds the queue's memory. An episode larger than one process's
            share is piped instead (slower).
        num_writers: writing processes (see the module docstring).
        overwrite: replace the dataset in a non-empty ``out_dir``.
        env_args: robomimic's ``env_args`` (``env_name``, ``type``, ``env_kwargs``); default names the task.

    Raises:
        ValueError: an argument is invalid (nothing is written or deleted).
        DatasetExistsError: ``out_dir`` is not empty and ``overwrite`` is False.
        DatasetNotWritableError: ``out_dir`` cannot be created or written to.
    """

    sink_class: type[ShardSink] = ShardSink
    """What the writing process writes with; tests substitute a subclass (it must be importable by that process)."""

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
        max_queued_episodes: int = 1024,
        max_queued_bytes: int = 64 * 2**20,
        num_writers: int = 2,
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
            ("max_queued_bytes", max_queued_bytes),
            ("num_writers", num_writers),
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
        json.dumps(self.env_args)  # raises TypeError now rather than in the writing process
        self.out_dir = Path(out_dir)
        self.task_id = task_id
        self.env_config_hash = env_config_hash
        self.episodes_per_shard = episodes_per_shard
        self.compression = compression
        self.compression_level = compression_level
        self.chunk_steps = chunk_steps
        self.overwrite = overwrite
        check_out_dir(self.out_dir, self.overwrite)

        self._config = SinkConfig(
            out_dir=self.out_dir,
            task_id=task_id,
            env_config_hash=env_config_hash,
            env_args=self.env_args,
            key_specs=self.key_specs,
            episodes_per_shard=episodes_per_shard,
            compression=compression,
            compression_level=compression_level,
            chunk_steps=chunk_steps,
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            created_with=package_versions(),
            num_writers=num_writers,
        )
        self._max_queued_episodes = max_queued_episodes
        self._max_queued_bytes = max_queued_bytes
        self._step_layout = {key: (spec.shape, np.dtype(spec.dtype)) for key, spec in self.key_specs.items()}
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._error: BaseException | None = None
        self._dropped = 0
        self._dr_keys: dict[str, dict[str, Any]] | None = None
        self._dr_signature: list = []
        self._writers: list[_WriterChannel] = []
        self._next_writer = 0
        self.manifest: dict[str, Any] = {}
        """The manifest written when the dataset started, then the final one after :meth:`close`."""

    # ------------------------------------------------------------------ public API

    @property
    def max_queued_episodes(self) -> int:
        """Episodes in flight between the caller and the writing process, at most."""
        return self._max_queued_episodes

    @property
    def writer_pids(self) -> list[int]:
        """Process ids of the writing processes (empty until the first episode starts them)."""
        return [channel.process.pid for channel in self._writers]

    @property
    def writer_peak_rss(self) -> list[int]:
        """Peak resident memory of each writing process [bytes], known after :meth:`close` (empty if none ran)."""
        return [channel.peak_rss for channel in self._writers if channel.peak_rss is not None]

    def write(self, episode: Episode) -> None:
        """Hand one episode over to the writing process; blocks while ``max_queued_episodes`` are in flight.

        The episode is copied (into shared memory) before this returns: the caller may reuse its arrays.

        Raises:
            ValueError: the episode's keys, shapes or dtypes differ from ``key_specs`` or from earlier DR keys.
            WriterError: the writing process failed or died (the cause is chained), or the writer is closed.
        """
        self._check_open()
        self._validate(episode)
        self._start()
        packed = PackedEpisode(episode)
        while not self._free_slots.acquire(timeout=POLL_SECONDS):
            self._raise_process_error()
        channel = self._writers[self._next_writer]  # episode n goes to writer n % num_writers (see shard_sink)
        self._send(channel, self._hand_over(channel, packed))
        self._next_writer = (self._next_writer + 1) % len(self._writers)

    def write_many(self, episodes: Iterable[Episode]) -> None:
        """Hand several episodes over in order (see :meth:`write`)."""
        for episode in episodes:
            self.write(episode)

    def add_dropped(self, count: int) -> None:
        """Count ``count`` more dropped episodes (blow-ups) in the manifest's ``totals.dropped_episodes``."""
        self._check_open()
        with self._lock:
            self._dropped += int(count)
            if self._started:
                self._dropped_shared.value = self._dropped

    def close(self) -> dict[str, Any]:
        """Write the episodes in flight and the last partial shard, mark the manifest complete and return it.

        Raises:
            WriterError: the writing process failed or died.
        """
        if self._closed:
            return self.manifest
        self._check_open()
        if not self._started:  # no episode: no process needed for a manifest without shards
            self._replace_old_dataset()
            self._write_manifest(complete=True)
            self._closed = True
            return self.manifest
        self._closed = True
        try:
            for channel in self._writers:
                self._send(channel, CLOSE_MESSAGE)
                channel.episodes.close()
            while not all(channel.finished for channel in self._writers):
                self._raise_process_error()
                self._receive(timeout=POLL_SECONDS)
            self._raise_process_error()
            # every writer has published its last shard: mark the manifest that lists them all complete
            self._write_manifest(complete=True)
        finally:
            self._shutdown()
        return self.manifest

    def abort(self) -> None:
        """Stop without completing the current shard: its temporary file is deleted, the episodes in flight are
        discarded and the manifest keeps describing the complete shards only. The old dataset is untouched if no
        episode was written. An error of the writing process is raised as :class:`WriterError`."""
        if self._closed:
            return
        self._closed = True
        if not self._started:
            return
        self._stop.set()  # the writing processes discard the episodes still in flight
        for channel in self._writers:
            channel.episodes.close()
        deadline = time.monotonic() + STOP_TIMEOUT
        for channel in self._writers:
            channel.process.join(max(0.0, deadline - time.monotonic()))
            if channel.process.is_alive():  # stuck (a hung disk?): kill it; _shutdown deletes its temporary shard
                channel.process.kill()
        self._receive(timeout=0)
        self._shutdown()
        if self._error is not None:
            self._raise_process_error()

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

    # ------------------------------------------------------------------ caller side

    def _check_open(self) -> None:
        if self._closed:
            raise WriterError(f"the writer of {self.out_dir} is closed")
        if self._started:
            self._raise_process_error()

    def _raise_process_error(self) -> None:
        """Raise :class:`WriterError` if a writing process reported an error or died without reporting."""
        if self._error is None:
            exited = [not channel.process.is_alive() for channel in self._writers]
            self._receive(timeout=0)
            for channel, gone in zip(self._writers, exited, strict=True):
                if gone and self._error is None and not channel.finished:
                    self._error = ChildProcessError(
                        f"the writing process (pid {channel.process.pid}) exited with code {channel.process.exitcode}"
                    )
        if self._error is not None:
            raise WriterError(f"writing {self.out_dir} failed: {self._error!r}") from self._error

    def _receive(self, timeout: float) -> None:
        """Take the writing processes' reports: an error, or that one has published its last shard. Waits up to
        ``timeout`` seconds for the first report."""
        pending = {channel.results: channel for channel in self._writers if not channel.finished}
        if not pending:
            return
        try:
            ready = multiprocessing.connection.wait(list(pending), timeout)
        except OSError:
            ready = []
        for connection in ready:
            channel = pending[connection]
            try:
                report = connection.recv()
            except (EOFError, OSError):
                continue  # the process is gone without a report: _raise_process_error names its exit code
            if report[0] == "error" and self._error is None:
                self._error = report[1]
                self._error.add_note(f"in the writing process:\n{report[2]}")
            elif report[0] == "closed":
                channel.peak_rss = report[1]
            channel.finished = True

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
        for key, (shape, dtype) in self._step_layout.items():
            array = episode.data[key]
            if array.shape[1:] != shape or len(array) != length or array.dtype != dtype:
                raise ValueError(
                    f"episode[{key!r}] is {array.dtype}{list(array.shape)}, expected {dtype}{[length, *shape]}"
                )
        # a cheap signature per episode (NumPy's dtype.name costs ~5 us); the manifest's form only once
        signature = sorted((name, np.shape(value), np.asarray(value).dtype.str) for name, value in episode.dr.items())
        with self._lock:
            if self._dr_keys is None:
                self._dr_keys, self._dr_signature = dr_keys_of(episode), signature
            elif signature != self._dr_signature:
                raise ValueError(
                    f"episode DR parameters {dr_keys_of(episode)} differ from the first episode's {self._dr_keys}"
                )

    def _write_manifest(self, complete: bool) -> None:
        """Write (from this process) the manifest listing the shards published so far; keep it as :attr:`manifest`."""
        sink = ShardSink(self._config, lambda: self._dropped)
        sink.dr_keys = self._dr_keys
        sink.write_manifest(complete)
        self.manifest = sink.manifest

    def _replace_old_dataset(self) -> None:
        """With ``overwrite``, delete the old dataset's files (manifest and shards, nothing else)."""
        if self.overwrite:
            for path in self.out_dir.iterdir():
                if path.is_file() and is_dataset_file(path.name):
                    path.unlink()
            fsync_dir(self.out_dir)

    def _start(self) -> None:
        """Replace the old dataset (if any) by an empty one and start the writing process and the feeder, once."""
        if self._started:
            return
        context = multiprocessing.get_context("spawn")  # the caller has Warp/torch threads: never fork
        num_writers = self._config.num_writers
        rings = []
        try:  # first: a failure leaves the old dataset untouched
            for _ in range(num_writers):
                consumed = context.Value("q", 0)
                rings.append((RingWriter(max(1, self._max_queued_bytes // num_writers), consumed), consumed))
        except OSError as error:
            for ring, _ in rings:
                ring.close()
            raise WriterError(
                f"cannot allocate {self._max_queued_bytes} bytes of shared memory for the writer of {self.out_dir} "
                f"({error.strerror or error}): lower max_queued_bytes or enlarge /dev/shm (docker run --shm-size)"
            ) from error
        self._replace_old_dataset()
        self._write_manifest(complete=False)

        self._free_slots = context.BoundedSemaphore(self._max_queued_episodes)
        self._stop = context.Event()
        self._dropped_shared = context.Value("q", self._dropped)
        # kept referenced: a spawned process can only attach to a semaphore that still exists in the caller
        self._publish_lock = context.Lock() if num_writers > 1 else None
        for index, (ring, consumed) in enumerate(rings):
            episodes_out, episodes_in = context.Pipe(duplex=False)
            results_in, results_out = context.Pipe(duplex=False)
            process = context.Process(
                target=run_writer_process,
                args=(
                    self.sink_class,
                    self._config,
                    index,
                    self._publish_lock,
                    episodes_out,
                    results_out,
                    self._free_slots,
                    self._stop,
                    self._dropped_shared,
                    ring.memory.name,
                    consumed,
                ),
                name=f"DatasetWriter({self.out_dir})[{index}]",
                daemon=True,
            )
            process.start()
            episodes_out.close()  # the process holds the only read end: it sees EOF when this one dies
            results_out.close()
            self._writers.append(_WriterChannel(process, episodes_in, results_in, ring))
        self._started = True

    def _hand_over(self, channel: _WriterChannel, packed: PackedEpisode) -> bytes:
        """Copy ``packed`` into shared memory (waiting for room) and return the message naming where it lies; an
        episode larger than the shared memory is returned as a message of its own bytes."""
        if packed.nbytes > channel.ring.capacity:
            payload = bytearray(len(EPISODE_MESSAGE) + packed.nbytes)
            payload[: len(EPISODE_MESSAGE)] = EPISODE_MESSAGE
            packed.copy_into(memoryview(payload)[len(EPISODE_MESSAGE) :])
            return payload
        while (space := channel.ring.reserve(packed.nbytes)) is None:
            self._raise_process_error()
            time.sleep(RING_POLL_SECONDS)
        view, record = space
        with view:  # released at once: the shared memory can only be closed once no view of it is left
            packed.copy_into(view)
        return SHARED_EPISODE_MESSAGE + record

    def _send(self, channel: _WriterChannel, message: bytes) -> None:
        """Pipe ``message`` to a writing process (a few bytes, except for an oversized episode).

        Raises:
            WriterError: the writing process is gone.
        """
        try:
            channel.episodes.send_bytes(message)
        except OSError as error:  # the read end is closed: the process exited; name its error or exit code
            channel.process.join(STOP_TIMEOUT)
            self._raise_process_error()
            raise WriterError(f"writing {self.out_dir} failed: the writing process stopped reading") from error

    def _shutdown(self) -> None:
        """Wait for the writing processes to end and release the pipes and the shared memory; delete the temporary
        shards of writing processes that did not end cleanly (killed, or failed)."""
        for channel in self._writers:
            channel.process.join()
            channel.episodes.close()
            channel.results.close()
            channel.ring.close()
        if self._error is not None or any(channel.process.exitcode != 0 for channel in self._writers):
            for path in self.out_dir.iterdir():
                if TEMP_SHARD_NAME.fullmatch(path.name):
                    path.unlink(missing_ok=True)


@dataclass
class _WriterChannel:
    """The caller's ends of one writing process."""

    process: multiprocessing.process.BaseProcess
    episodes: Connection
    """Where the episode messages go (write end)."""
    results: Connection
    """Where the process's reports come from (read end)."""
    ring: RingWriter
    """The shared memory the process reads episodes from."""
    finished: bool = False
    """Whether the process has reported its end (closed, stopped, or an error)."""
    peak_rss: int | None = None
    """The process's peak resident memory [bytes], reported when it closed."""


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
