"""The dataset writer: cost of writing one episode, and what the simulation loop pays per episode, old vs new.

Episodes: 40 per-step keys of shape (3,) float32 (obs/states/labels), 25 steps (WAM-Cartpole-like) and 300 steps.

- ``encode``: CPU time to write one episode into an open shard (gzip level 1), h5py's high-level
  ``create_dataset`` per key (the old path, kept below as a reference) vs the low-level
  :class:`~wam_isaac.data.shards.EpisodeEncoder`.
- ``sim_loop_overhead``: a stand-in simulation loop (pure Python work holding the GIL, ``SIM_MS`` per episode) hands
  each episode to a writer; the overhead is the loop's wall time per episode minus the same loop without a writer.
  Old: a writing thread with the high-level path (the GIL is shared); new: :class:`DatasetWriter` (spawned process).
- ``write_call``: wall time of one :meth:`DatasetWriter.write` call (validation, pickling, handing over).
- ``writer_process_cpu``: CPU time of the writing process per episode (unpickling, encoding, fsync, sha256), its
  start-up (measured with a one-episode dataset) subtracted.

Ratios are measured side by side in one run (absolute times drift on a shared machine).
"""

from __future__ import annotations

import queue
import resource
import tempfile
import threading
import time
from pathlib import Path

import h5py
import numpy as np

from wam_isaac.data.episode import Episode
from wam_isaac.data.shards import EpisodeEncoder, demo_name
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter

NUM_KEYS = 40
SIM_MS = 20.0
"""Work of the stand-in simulation loop per episode [ms]; about what 256 WAM-Cartpole envs take per episode."""
MAX_QUEUED = 4
"""Queue capacity of both writers: small, so that the loop reaches its steady state within a few episodes."""
TARGET_ENCODE_SPEEDUP = {25: 2.0, 300: 1.5}
"""At 300 steps deflate dominates, and the API used around it does not change deflate."""
TARGET_OVERHEAD_RATIO = 3.0


def _key(i: int) -> str:
    return f"obs/k{i}" if i < 10 else f"states/k{i}" if i < 25 else f"labels/k{i}"


def _episodes(count: int, steps: int) -> list[Episode]:
    rng = np.random.default_rng(0)
    return [
        Episode(
            {_key(i): rng.standard_normal((steps, 3)).astype(np.float32) for i in range(NUM_KEYS)},
            env_id=0,
            seed=0,
            success=True,
            dr={"robot/body_mass": np.ones(3, np.float32)},
            attrs={"timeout": False},
        )
        for _ in range(count)
    ]


def write_high_level(data: h5py.Group, episode_id: int, episode: Episode, chunk_steps: int = 256) -> None:
    """The old path: one high-level ``create_dataset`` per key (gzip 1, shuffle, chunked along time)."""
    demo = data.create_group(demo_name(episode_id))
    demo.attrs.update({"num_samples": episode.num_samples, "seed": np.int64(episode.seed), "success": True})
    demo.attrs.update({"env_id": np.int64(episode.env_id), **episode.attrs})
    for key, array in episode.data.items():
        chunks = (min(len(array), chunk_steps), *array.shape[1:])
        demo.create_dataset(key, data=array, chunks=chunks, compression="gzip", compression_opts=1, shuffle=True)
    for name, value in episode.dr.items():
        demo.create_dataset(f"dr/{name}", data=value)


class ThreadWriter:
    """The old writer's shape: a bounded queue and a thread writing with the high-level path."""

    def __init__(self, path: Path, max_queued: int) -> None:
        self._queue: queue.Queue = queue.Queue(max_queued)
        self._file = h5py.File(path, "w")
        self._thread = threading.Thread(target=self._run)
        self._thread.start()

    def write(self, episode: Episode) -> None:
        self._queue.put(episode)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._file.close()

    def _run(self) -> None:
        data = self._file.create_group("data")
        episode_id = 0
        while (episode := self._queue.get()) is not None:
            write_high_level(data, episode_id, episode)
            episode_id += 1


def _encode_ms(episodes: list[Episode], write, directory: Path) -> float:
    """CPU time per episode of ``write(data, episode_id, episode)`` into one shard [ms]."""
    with h5py.File(directory / f"encode_{time.monotonic_ns()}.h5", "w") as file:
        data = file.create_group("data")
        start = time.process_time()
        for episode_id, episode in enumerate(episodes):
            write(data, episode_id, episode)
        return (time.process_time() - start) / len(episodes) * 1e3


def _busy(ms: float) -> None:
    """Pure Python work holding the GIL for ``ms`` milliseconds of this thread's CPU time."""
    end = time.thread_time() + ms / 1e3
    while time.thread_time() < end:
        sum(range(200))


def _sim_loop_ms(episodes: list[Episode], write) -> float:
    """Wall time per episode of the stand-in simulation loop handing every episode to ``write`` [ms]."""
    start = time.perf_counter()
    for episode in episodes:
        _busy(SIM_MS)
        if write is not None:
            write(episode)
    return (time.perf_counter() - start) / len(episodes) * 1e3


def _dataset_writer(directory: Path, key_specs: dict[str, KeySpec]) -> DatasetWriter:
    out_dir = directory / f"d_{time.monotonic_ns()}"
    return DatasetWriter(
        out_dir, "WAM-Bench", "bench", key_specs, episodes_per_shard=100, max_queued_episodes=MAX_QUEUED
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(args) -> list[dict]:
    count = 30 if args.quick else 200
    figures = []
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        for steps in (25, 300):
            episodes = _episodes(count if steps == 25 else count // 2, steps)
            key_specs = {key: KeySpec((3,)) for key in episodes[0].data}
            common = {"keys": NUM_KEYS, "steps": steps, "episodes": len(episodes), "compression": "gzip-1"}

            encoder = EpisodeEncoder("gzip", 1, 256)
            old = min(_encode_ms(episodes, write_high_level, directory) for _ in range(2))
            new = min(_encode_ms(episodes, encoder.write, directory) for _ in range(2))
            figures += [
                {"name": f"encode_cpu/high_level/T{steps}", "value": round(old, 2), "unit": "ms", "target": None},
                {"name": f"encode_cpu/low_level/T{steps}", "value": round(new, 2), "unit": "ms", "target": None},
                {
                    "name": f"ratio/encode_speedup/T{steps}",
                    "value": round(old / new, 2),
                    "unit": "x",
                    "target": TARGET_ENCODE_SPEEDUP[steps],
                    "pass": old / new >= TARGET_ENCODE_SPEEDUP[steps],
                },
            ]

            bare = _sim_loop_ms(episodes, None)
            thread_writer = ThreadWriter(directory / f"thread_{steps}.h5", MAX_QUEUED)
            with_thread = _sim_loop_ms(episodes, thread_writer.write)
            thread_writer.close()

            startup_cpu = _children_cpu()
            with _dataset_writer(directory, key_specs) as writer:
                writer.write(episodes[0])
            startup_cpu = _children_cpu() - startup_cpu

            process_cpu = _children_cpu()
            writer = _dataset_writer(directory, key_specs)
            call_times = []

            def timed_write(episode: Episode, writer=writer, call_times=call_times) -> None:
                start = time.perf_counter()
                writer.write(episode)
                call_times.append(time.perf_counter() - start)

            writer.write(episodes[0])  # start the writing process outside the timed loop, and wait until it is up
            while writer._free_slots.get_value() < writer.max_queued_episodes:
                time.sleep(0.01)
            time.sleep(0.2)
            with_process = _sim_loop_ms(episodes, timed_write)
            writer.close()
            process_cpu = (_children_cpu() - process_cpu - startup_cpu) / len(episodes) * 1e3

            old_overhead, new_overhead = with_thread - bare, with_process - bare
            figures += [
                {"name": f"sim_loop_overhead/thread_high_level/T{steps}", "value": round(old_overhead, 2),
                 "unit": "ms/episode", "target": None, "sim_ms": SIM_MS},
                {"name": f"sim_loop_overhead/process_low_level/T{steps}", "value": round(new_overhead, 2),
                 "unit": "ms/episode", "target": None, "sim_ms": SIM_MS},
                {"name": f"ratio/sim_loop_overhead_old_vs_new/T{steps}",
                 "value": round(old_overhead / max(new_overhead, 1e-3), 1), "unit": "x",
                 "target": TARGET_OVERHEAD_RATIO, "pass": old_overhead >= TARGET_OVERHEAD_RATIO * new_overhead},
                {"name": f"write_call/median/T{steps}", "value": round(float(np.median(call_times)) * 1e3, 3),
                 "unit": "ms", "target": None},
                {"name": f"writer_process_cpu/T{steps}", "value": round(process_cpu, 2), "unit": "ms/episode",
                 "target": None},
            ]  # fmt: skip
            for figure in figures:
                figure.update({**common, **figure})
    return figures
