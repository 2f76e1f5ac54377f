"""``wam generate --num_procs 2`` (2 Gloo ranks of Isaac Lab on the CPU): SIGKILL of rank 1 mid-run fails the job
with one line naming rank 1 and leaves a dataset ``wam inspect --verify`` accepts whose manifest claims none of the
run's shards; ``--resume`` then completes every rank, and the one manifest covers both ranks' shards without a
duplicate episode id, seed or env."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_in_process import wam

from wam_isaac.data import iter_episodes, load_manifest

pytestmark = pytest.mark.integration

NUM_ENVS, RANKS = 3, 2
ARGS = ["--task", "WAM-Cartpole", "--num_envs", str(NUM_ENVS), "--policy", "random", "--noise", "0.5",
        "--episodes_per_shard", "2", "--num_procs", str(RANKS)]  # fmt: skip


def generate(out: Path, steps: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wam_isaac", "generate", *ARGS, "--steps", str(steps), "--out", str(out), *extra]


def rank_process(launcher: int, rank: int) -> int | None:
    """The pid of rank ``rank`` of the job started by process ``launcher`` (its child with ``RANK=<rank>``)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            environ = (entry / "environ").read_bytes().split(b"\0")
        except (OSError, IndexError, ValueError):
            continue
        if parent == launcher and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def journal_shards(out: Path, rank: int) -> int:
    path = out / f"rank_{rank:03d}" / "manifest.json"
    return len(load_manifest(path.parent)["shards"]) if path.exists() else 0


def test_a_killed_rank_fails_the_job_then_resume_publishes_both_ranks(tmp_path):
    out = tmp_path / "d"
    job = subprocess.Popen(generate(out, 400), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and job.poll() is None and journal_shards(out, 1) < 1:
        time.sleep(0.2)
    victim = rank_process(job.pid, 1)
    assert victim is not None, "rank 1 not found"
    os.kill(victim, signal.SIGKILL)
    _, stderr = job.communicate(timeout=180)
    assert job.returncode == 1, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("wam generate: error: rank 1 of 2 was killed by SIGKILL"), last
    verify = wam("inspect", str(out), "--verify")
    assert verify.returncode == 0, verify.stderr
    killed_run = load_manifest(out)
    assert killed_run["shards"] == [] and not killed_run["complete"]  # claims none of the run's shards...
    assert journal_shards(out, 1) >= 1  # ...though rank 1 had completed some

    steps = 60
    resumed = subprocess.run([*generate(out, steps), "--resume"], capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    verify = wam("inspect", str(out), "--verify")
    assert verify.returncode == 0, verify.stderr
    manifest = load_manifest(out)
    assert manifest["complete"]
    listed = {shard["name"] for shard in manifest["shards"]}
    on_disk = {f"{d.name}/{f.name}" for d in out.glob("rank_*") for f in d.glob("shard_*.h5")}
    assert listed == on_disk and {name.split("/")[0] for name in listed} == {"rank_000", "rank_001"}
    assert [(s["seed"], s["ranks"]) for s in manifest["segments"]] == [(0, 2), (2, 2)]
    ids = [i for shard in manifest["shards"] for i in shard["episode_ids"]]
    assert len(ids) == len(set(ids)) == manifest["totals"]["episodes"]
    episodes = [episode for _, episode in iter_episodes(out)]
    for rank in range(RANKS):  # each rank: its own envs and seeds, and its share of --steps * --num_envs
        own = [e for e in episodes if e.env_id // NUM_ENVS == rank]
        assert {e.seed for e in own} <= {rank, 2 + rank}, {e.seed for e in own}
        assert steps * NUM_ENVS <= sum(e.num_samples for e in own) < (steps + 1) * NUM_ENVS
    keys = [(e.seed, e.env_id, e.attrs["episode_index"]) for e in episodes]
    assert len(keys) == len(set(keys))
    assert {e.env_id for e in episodes} == set(range(RANKS * NUM_ENVS))
