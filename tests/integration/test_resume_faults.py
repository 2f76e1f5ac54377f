"""SIGKILL of ``wam generate --resume`` at chosen points (3 trials, one of each kind): right after the dataset's
manifest exists and before any shard; at a random time 5-15 s after the start (start-up or the first steps); and while
stepping, after the run published a new shard and while it writes the next one (its temporary shard file exists: the
manifest lists exactly the complete shards, and the only unlisted files are temporary ones). Every kill leaves a
dataset that ``wam inspect --verify`` accepts, and ``--resume`` then completes it to ``--steps * --num_envs``
transitions without duplicate episode ids or seeds. Each trial starts Isaac Lab. The stepping kill follows the run's
progress rather than the clock, so a slow or loaded machine still gets it (kills at clock times 5-35 s after the start,
at load 10 on 2 cores, landed before the run's first shard in 4 trials of 5)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time

import pytest
from cli_in_process import wam
from test_resume import check_complete, generate, run

from wam_isaac.data import load_manifest, summarize, unlisted_files
from wam_isaac.data.manifest import temp_shard_name

pytestmark = pytest.mark.integration


def published(out) -> int:
    """Shards the dataset's manifest lists (0 before it exists)."""
    return len(load_manifest(out)["shards"]) if (out / "manifest.json").exists() else 0


def test_sigkill_at_random_times_then_resume_completes(tmp_path):
    out = tmp_path / "d"
    rng = random.Random(0)
    for trial in range(3):
        shards = published(out)
        process = subprocess.Popen(generate(out, "--resume"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if trial == 0:  # killed before its first shard: as soon as the dataset's manifest exists
            while not (out / "manifest.json").exists() and process.poll() is None:
                time.sleep(0.01)
        elif trial == 1:  # during start-up or the first steps
            time.sleep(rng.uniform(5.0, 15.0))
        else:  # while stepping: this run published a shard, and the next one is being written
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and process.poll() is None and published(out) <= shards:
                time.sleep(0.05)
            writing = False  # the temporary file of the shard after the last published one exists
            while time.monotonic() < deadline and process.poll() is None:
                if writing := (out / temp_shard_name(published(out))).exists():
                    break
                time.sleep(0.01)
            assert process.poll() is None, f"trial {trial}: the run ended before the kill (exit {process.returncode})"
            assert writing, f"trial {trial}: no shard was being written within 240 s"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        if trial == 0:
            assert load_manifest(out)["shards"] == []
        if trial == 2:  # the half-written shard is on disk, unlisted (and only it), next to the published ones
            manifest = load_manifest(out)
            assert manifest["complete"] is False and len(manifest["shards"]) > shards
            listed = {shard["name"] for shard in manifest["shards"]}
            assert {path.name for path in out.glob("shard_*.h5")} == listed, "a shard outside the manifest"
            assert unlisted_files(out) and all(name.endswith(".tmp") for name in unlisted_files(out))
            assert summarize(out)["transitions"] == sum(shard["transitions"] for shard in manifest["shards"])
        if (out / "manifest.json").exists():
            verify = wam("inspect", str(out), "--verify")
            assert verify.returncode == 0, f"trial {trial}: {verify.stderr}"
            print(f"trial {trial}: {len(load_manifest(out)['shards'])} shards, verify ok")  # shown with -s
        else:
            print(f"trial {trial}: killed before the dataset existed")
    resumed = run(generate(out, "--resume"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    check_complete(out)
