"""SIGKILL of ``wam generate --resume`` at chosen points (6 trials): right after the dataset's manifest exists and
before any shard; at a random time 5-15 s after the start (start-up or the first steps, twice); and, three times, at a
random time 0-0.3 s after the run published a new shard (stepping, with a shard published every few steps: kills land
between and during publications). Every kill leaves a dataset that ``wam inspect --verify`` accepts, and ``--resume``
then completes it to ``--steps * --num_envs`` transitions without duplicate episode ids or seeds. Each trial starts
Isaac Lab, so this file takes minutes. The kill points follow the run's progress rather than the clock, so a slow or
loaded machine still gets kills while stepping (kills at clock times 5-35 s after the start, at load 10 on 2 cores,
landed before the run's first shard in 4 trials of 5)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
from test_resume import check_complete, generate, run

from wam_isaac.data import load_manifest

pytestmark = pytest.mark.integration


def published(out) -> int:
    """Shards the dataset's manifest lists (0 before it exists)."""
    return len(load_manifest(out)["shards"]) if (out / "manifest.json").exists() else 0


def test_sigkill_at_random_times_then_resume_completes(tmp_path):
    out = tmp_path / "d"
    rng = random.Random(0)
    stepping_kills = 0
    for trial in range(6):
        shards = published(out)
        process = subprocess.Popen(generate(out, "--resume"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial == 0:  # killed before its first shard: as soon as the dataset's manifest exists
            while not (out / "manifest.json").exists() and process.poll() is None:
                time.sleep(0.01)
        elif trial < 3:  # during start-up or the first steps
            time.sleep(rng.uniform(5.0, 15.0))
        else:  # while stepping: shortly after this run published a shard (the next one may be on its way)
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and process.poll() is None and published(out) <= shards:
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 0.3))
            if process.poll() is not None:  # the run completed the dataset before the kill: nothing left to kill
                print(f"trial {trial}: completed the dataset before the kill")
                break
            stepping_kills += 1
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if trial == 0:
            assert load_manifest(out)["shards"] == []
        if (out / "manifest.json").exists():
            verify = run([sys.executable, "-m", "wam_isaac", "inspect", str(out), "--verify"])
            assert verify.returncode == 0, f"trial {trial}: {verify.stderr}"
            print(f"trial {trial}: {len(load_manifest(out)['shards'])} shards, verify ok")  # shown with -s
        else:
            print(f"trial {trial}: killed before the dataset existed")
    assert stepping_kills >= 1  # at least one kill while the run was stepping and publishing
    resumed = run(generate(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_complete(out)
