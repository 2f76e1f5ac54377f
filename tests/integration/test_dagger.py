"""``wam dagger`` on WAM-Cartpole (the expert's task without instruction or contact groups): round 0 the noisy
expert, round 1 the round-0 WAM mixed with the expert; both labeled by the expert and aggregated in one dataset."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from wam_isaac.data import iter_episodes

pytestmark = pytest.mark.integration

ARGS = ["--task", "WAM-Cartpole", "--rounds", "1", "--num_envs", "4", "--steps", "20", "--epochs", "1"]
ARGS += ["--round_epochs", "1", "--eval_episodes", "4", "--history", "2", "--forecast", "2", "--device", "cpu"]


def dagger(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "wam_isaac", "dagger", *ARGS, *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600)


def test_dagger_rounds_aggregate_expert_labeled_data(tmp_path):
    out = tmp_path / "run"
    refused = dagger("--out", str(out), "model.trunk.kind=mlp")  # 60 windows: no batch of 256 fits
    errors = [line for line in refused.stderr.splitlines() if "error:" in line]
    assert refused.returncode == 2 and len(errors) == 1 and "lower train.batch_size" in errors[0], refused.stderr
    assert "Traceback" not in refused.stderr

    out = tmp_path / "run2"
    result = dagger("--out", str(out), "model.trunk.kind=mlp", "train.batch_size=16")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads((out / "dagger.json").read_text())
    rounds = summary["rounds"]
    assert [r["round"] for r in rounds] == [0, 1]
    assert [r["generation"]["beta"] for r in rounds] == [1.0, 0.5]
    assert all(r["generation"]["transitions"] == 4 * 20 for r in rounds)
    assert all(r["closed_loop"]["episodes"] == 4 for r in rounds)
    assert all((out / f"round_{i}" / "checkpoints" / "last.pt").is_file() for i in (0, 1))
    episodes = [episode for _, episode in iter_episodes(out / "data")]
    assert sum(len(e.data["actions"]) for e in episodes) == 2 * 4 * 20  # both rounds in one aggregate
    for episode in episodes:  # every step labeled, the last one included
        labels = episode.data["expert_actions"]
        assert labels.shape == episode.data["actions"].shape and np.isfinite(labels).all()
    # round 0 executed the expert with exploration noise 0.1 (--expert_noise): the labels are its noise-free actions
    first, steps = [], 0
    for episode in episodes:
        if steps >= 4 * 20:
            break
        first.append(episode.data["actions"] - episode.data["expert_actions"])
        steps += len(episode.data["actions"])
    noise = np.concatenate(first)
    assert len(noise) == 4 * 20 and 0.07 < noise.std() < 0.13 and abs(noise.mean()) < 0.04, (noise.mean(), noise.std())
