"""The dataset writer: sustained throughput per writing process, old design (schema 2) vs new (schema 3), one run.

Episodes: WAM-Push-Cube's 52 per-step keys with its shapes and dtypes (observation groups, states, every label;
~1 kB per step), its 11 DR parameters, a final state, extra attributes; 25-step and 300-step episodes. Values are
random walks (smooth like simulator states, so they compress like them).

- old: the schema-2 writer (one HDF5 group per episode, a shared-memory ring feeding two spawned writing processes,
  low-level encoder with ISA-L), imported from git history at bench time (``OLD_COMMIT``: the last commit with that
  design), so no copy of it lives in the package. Its cost per writing process is the CPU time of the writing
  processes (``RUSAGE_CHILDREN``, their start-up measured with a one-episode dataset and subtracted) over the
  transitions they wrote; the caller's cost of handing over is reported beside it.
- new: :class:`~wam_isaac.data.DatasetWriter` (columnar shards, one background thread in the caller's process). Its
  cost per writing process is the whole process's CPU time from the first ``write_many`` to ``close`` returning
  (validation in the caller, blocks, deflate, fsync, sha256): everything the writer costs.

Both write gzip level 1 with shuffle (HDF5's deflate filter, read by every HDF5 reader).
Figures: transitions per CPU-second per writing process, wall-time throughput, bytes on disk per transition.
"""

from __future__ import annotations

import importlib
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from wam_isaac.data import DatasetWriter, Episode, KeySpec

OLD_COMMIT = "31c7b24"
"""The last commit whose ``data/`` holds the schema-2 writer."""
OLD_FILES = ("__init__", "episode", "errors", "manifest", "shard_sink", "shards", "shared_ring", "specs", "writer")
EPISODES_PER_SHARD = 1000
"""Episodes per shard of the old writer (its default was 100, which costs it more per episode); the new one writes
shards of its default size (``TRANSITIONS_PER_SHARD``: 131072 transitions)."""
TARGET = 100_000
"""Transitions per CPU-second per writing process the new writer must reach."""
REPO = Path(__file__).resolve().parents[1]

PUSH_CUBE_KEYS = {
    "obs/policy": (17,), "obs/critic": (34,), "obs/world_model/joint_pos": (3,), "obs/world_model/joint_vel": (3,),
    "obs/world_model/cube_pos": (3,), "obs/world_model/cube_quat": (4,), "obs/world_model/cube_lin_vel": (3,),
    "obs/world_model/cube_ang_vel": (3,), "obs/instruction/goal": (2,), "states/robot/root_pose": (7,),
    "states/robot/root_vel": (6,), "states/robot/joint_pos": (3,), "states/robot/joint_vel": (3,),
    "states/table/root_pose": (7,), "states/table/root_vel": (6,), "states/cube/root_pose": (7,),
    "states/cube/root_vel": (6,), "actions": (3,), "rewards": (), "dones": (),
    **{f"labels/delta_{k}/{name}": shape for k in (1, 8) for name, shape in (
        ("valid", ()), ("root_pos_w", (3, 3)), ("root_pos_b", (3, 3)), ("root_rotvec", (3, 3)),
        ("root_lin_vel_b", (3, 3)), ("root_ang_vel_b", (3, 3)), ("robot/joint_pos", (3,)), ("robot/joint_vel", (3,)))},
    **{f"labels/energy/{name}": () for name in ("kinetic", "potential", "total", "delta", "actuator_work")},
    "labels/contact/contact_forces/flag": (2,), "labels/contact/contact_forces/force": (2,),
    "labels/penetration/robot": (1,), "labels/penetration/cube": (1,),
    "labels/manipulation/object_pos_in_ee": (3,), "labels/manipulation/object_rotvec_in_ee": (3,),
    "labels/manipulation/goal_pos_in_object": (3,), "labels/manipulation/object_to_goal_distance_xy": (),
    "labels/flags/terminated": (), "labels/flags/time_out": (), "labels/flags/success": (),
}  # fmt: skip
"""WAM-Push-Cube's per-step keys and shapes (float32 except ``dones``), as its manifest lists them."""
DR_SHAPES = {"robot/body_mass": (4,), "robot/joint_stiffness": (3,), "robot/joint_damping": (3,),
             "robot/joint_friction": (3,), "robot/shape_friction": (1,), "table/body_mass": (1,),
             "table/shape_friction": (1,), "cube/body_mass": (1,), "cube/shape_friction": (1,),
             "action/arm/strength": ()}  # fmt: skip

KEY_SPECS = {key: KeySpec(shape, "bool" if key == "dones" else "float32") for key, shape in PUSH_CUBE_KEYS.items()}


def _episodes(count: int, steps: int, distinct: int = 16) -> list[Episode]:
    """``count`` episodes (``distinct`` different ones, repeated) of ``steps`` steps."""
    rng = np.random.default_rng(0)
    pool = []
    for env_id in range(distinct):
        data = {
            key: np.cumsum(0.01 * rng.standard_normal((steps, *shape)), axis=0).astype(np.float32)
            for key, shape in PUSH_CUBE_KEYS.items()
        }
        data["dones"] = np.arange(steps) == steps - 1
        dr = {name: rng.uniform(0.5, 1.5, shape).astype(np.float32) for name, shape in DR_SHAPES.items()}
        dr["action/arm/latency"] = np.int64(env_id % 3)
        final = {key: data[key][-1] + 0.01 for key in PUSH_CUBE_KEYS if key.startswith("states/")}
        attrs = {"episode_index": 0, "budget_end": 0}
        pool.append(Episode(data, env_id, seed=0, success=bool(env_id % 2), dr=dr, attrs=attrs, final=final))
    return [pool[i % distinct] for i in range(count)]


def _old_package(directory: Path):
    """The schema-2 ``wam_isaac.data`` as package ``wam_old_data``, read from git at ``OLD_COMMIT``."""
    package = directory / "wam_old_data"
    package.mkdir()
    for name in OLD_FILES:
        source = subprocess.run(
            ["git", "-C", str(REPO), "show", f"{OLD_COMMIT}:source/wam_isaac/data/{name}.py"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        (package / f"{name}.py").write_text(source)
    sys.path.insert(0, str(directory))  # spawned writing processes inherit sys.path and import it by name
    return importlib.import_module("wam_old_data.writer")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _size(directory: Path) -> int:
    return sum(path.stat().st_size for path in directory.iterdir())


def _old(old_writer, episodes: list[Episode], directory: Path) -> dict[str, float]:
    old_key_spec = importlib.import_module("wam_old_data.specs").KeySpec
    specs = {key: old_key_spec(spec.shape, spec.dtype) for key, spec in KEY_SPECS.items()}

    def writer(name: str):
        return old_writer.DatasetWriter(
            directory / name, "WAM-Bench", "bench", specs, episodes_per_shard=EPISODES_PER_SHARD
        )

    startup = _children_cpu()
    with writer(f"old_startup_{time.monotonic_ns()}") as w:
        w.write(episodes[0])
    startup = _children_cpu() - startup
    out = f"old_{time.monotonic_ns()}"
    children, caller, wall = _children_cpu(), time.process_time(), time.perf_counter()
    with writer(out) as w:
        w.write_many(episodes)
    wall, caller = time.perf_counter() - wall, time.process_time() - caller
    children = _children_cpu() - children - startup
    transitions = sum(episode.num_samples for episode in episodes)
    return {"cpu": children, "caller_cpu": caller, "wall": wall, "transitions": transitions,
            "bytes": _size(directory / out)}  # fmt: skip


def _new(episodes: list[Episode], directory: Path) -> dict[str, float]:
    out = directory / f"new_{time.monotonic_ns()}"
    cpu, wall = time.process_time(), time.perf_counter()
    with DatasetWriter(out, "WAM-Bench", "bench", KEY_SPECS) as writer:  # shards of its default size
        writer.write_many(episodes)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    transitions = sum(episode.num_samples for episode in episodes)
    return {"cpu": cpu, "caller_cpu": cpu, "wall": wall, "transitions": transitions, "bytes": _size(out)}


def run(args) -> list[dict]:
    figures = []
    with tempfile.TemporaryDirectory() as temp:
        directory = Path(temp)
        old_writer = _old_package(directory)
        for steps in (25, 300):
            # new: several shards of its default size (sustained, not one shard's best case)
            old_count, new_count = (60, 1600) if args.quick else (400, 16000)
            if steps == 300:
                old_count, new_count = old_count // 6, new_count // 8
            _new(_episodes(20, steps), directory)  # warm-up (imports, first file)
            old = _old(old_writer, _episodes(old_count, steps), directory)
            new = _new(_episodes(new_count, steps), directory)
            common = {
                "steps": steps,
                "keys": len(KEY_SPECS),
                "compression": "gzip-1+shuffle",
                "episodes_per_shard": 100,
            }
            rates = {}
            for name, result in (("old", old), ("new", new)):
                rates[name] = result["transitions"] / result["cpu"]
                figures += [
                    {"name": f"transitions_per_cpu_s_per_writer_process/{name}/T{steps}", "value": round(rates[name]),
                     "unit": "transitions/s", "target": TARGET if name == "new" else None,
                     **({"pass": rates[name] >= TARGET} if name == "new" else {}),
                     "episodes": old_count if name == "old" else new_count, **common},
                    {"name": f"caller_cpu_per_episode/{name}/T{steps}", "value": round(
                        result["caller_cpu"] / (result["transitions"] / steps) * 1e3, 3), "unit": "ms", "target": None,
                     **common},
                    {"name": f"wall_transitions_per_s/{name}/T{steps}", "value": round(result["transitions"] /
                     result["wall"]), "unit": "transitions/s", "target": None, **common},
                    {"name": f"bytes_per_transition/{name}/T{steps}", "value": round(result["bytes"] /
                     result["transitions"], 1), "unit": "B", "target": None, **common},
                ]  # fmt: skip
            figures.append(
                {
                    "name": f"ratio/new_vs_old_per_writer_process/T{steps}",
                    "value": round(rates["new"] / rates["old"], 1),
                    "unit": "x",
                    "target": None,
                    **common,
                }  # fmt: skip
            )
    return figures
