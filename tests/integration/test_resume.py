"""Preemption and resume of ``wam generate``: SIGTERM publishes the shard in progress and exits 0; ``--resume``
completes the dataset to ``--steps * --num_envs`` transitions with new episode ids and a new seed; ``--resume``
with another env config is a one-line error (exit 2) that changes nothing. SIGKILL trials: ``test_resume_faults.py``."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cli_in_process import wam

from wam_isaac.data import iter_episodes, load_manifest

pytestmark = pytest.mark.integration

NUM_ENVS, STEPS = 3, 150
ARGS = ["--task", "WAM-Cartpole", "--num_envs", str(NUM_ENVS), "--policy", "random", "--noise", "0.5",
        "--episodes_per_shard", "2"]  # fmt: skip


def generate(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wam_isaac", "generate", *ARGS, "--steps", str(STEPS), "--out", str(out), *extra]


def run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def check_complete(out: Path) -> None:
    """The dataset holds the requested size, verifies, and no episode id or (seed, env, episode index) repeats."""
    verify = wam("inspect", str(out), "--verify")
    assert verify.returncode == 0, verify.stderr
    manifest = load_manifest(out)
    target = STEPS * NUM_ENVS
    assert target <= manifest["totals"]["transitions"] < target + NUM_ENVS, manifest["totals"]
    ids = [i for shard in manifest["shards"] for i in shard["episode_ids"]]
    assert len(ids) == len(set(ids)) == manifest["totals"]["episodes"]
    seeds = [segment["seed"] for segment in manifest["segments"]]
    assert len(seeds) == len(set(seeds))
    episodes = [episode for _, episode in iter_episodes(out)]
    keys = [(e.seed, e.env_id, e.attrs["episode_index"]) for e in episodes]
    assert len(keys) == len(set(keys)) and {e.seed for e in episodes} <= set(seeds)


def test_sigterm_publishes_the_shard_in_progress_then_resume_completes(tmp_path):
    out = tmp_path / "d"
    process = subprocess.Popen(generate(out), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and process.poll() is None:  # SIGTERM once the writer exists (first step)
        if (out / "manifest.json").exists() and load_manifest(out)["keys"]:
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert "SIGTERM" in stdout, stdout
    manifest = load_manifest(out)
    assert manifest["complete"] and manifest["totals"]["transitions"] < STEPS * NUM_ENVS
    # every env's running episode was written (budget_end) and published: a shard beyond the first
    assert sum(e.attrs["budget_end"] for _, e in iter_episodes(out)) == NUM_ENVS
    before = snapshot(out)
    other = run([*generate(out, "--resume"), "--seed", "7"])  # another seed: another env config
    errors = [line for line in other.stderr.splitlines() if "error:" in line]
    assert other.returncode == 2 and len(errors) == 1 and "Traceback" not in other.stderr, other.stderr
    assert "another env config" in other.stderr and snapshot(out) == before
    resumed = run(generate(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_complete(out)
    assert [s["seed"] for s in load_manifest(out)["segments"]] == [0, 1]
    # resuming a dataset that holds its size adds nothing and leaves it complete
    before = {name: data for name, data in snapshot(out).items() if name != "manifest.json"}
    again = run(generate(out, "--resume"))
    assert again.returncode == 0, again.stderr[-2000:]
    check_complete(out)
    assert load_manifest(out)["complete"]
    assert {name: data for name, data in snapshot(out).items() if name != "manifest.json"} == before
