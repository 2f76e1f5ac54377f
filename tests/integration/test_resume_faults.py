"""SIGKILL of ``wam generate --resume`` at random times (10 trials, the first right after the dataset's manifest
exists and before any shard): every kill leaves a dataset that ``wam inspect --verify`` accepts, and ``--resume``
then completes it to ``--steps * --num_envs`` transitions without duplicate episode ids or seeds. Each trial starts
Isaac Lab, so this file takes minutes; the kills that land during start-up are part of the test (no dataset or an
empty one)."""

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


def test_sigkill_at_random_times_then_resume_completes(tmp_path):
    out = tmp_path / "d"
    rng = random.Random(0)
    for trial in range(10):
        process = subprocess.Popen(generate(out, "--resume"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial == 0:  # killed before its first shard: as soon as the dataset's manifest exists
            while not (out / "manifest.json").exists() and process.poll() is None:
                time.sleep(0.01)
        else:  # anywhere: during start-up, stepping, or a shard's publication
            time.sleep(rng.uniform(5.0, 35.0))
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
    resumed = run(generate(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_complete(out)
