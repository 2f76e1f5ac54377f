"""Preemption of ``wam train-model``: SIGTERM in the middle of an epoch -> a checkpoint at the next gradient step and
exit 0; ``--resume`` continues from that batch and ends with exactly the parameters of an uninterrupted run (CPU,
``train.deterministic=true``)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import torch

from wam_isaac.training.checkpoint import load_checkpoint

EPOCHS = 2
OVERRIDES = ["train.batch_size=8", "model.trunk.hidden=16", "train.deterministic=true", "train.val_windows=32"]


def train_model(data, out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "wam_isaac", "train-model", "--data", str(data), "--model", "gru", "--history", "4",
            "--forecast", "4", "--epochs", str(EPOCHS), "--out", str(out), *extra, *OVERRIDES]  # fmt: skip


ENV = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}


def test_sigterm_checkpoints_mid_epoch_and_resume_matches_an_uninterrupted_run(linear_data, tmp_path):
    straight = subprocess.run(train_model(linear_data, tmp_path / "a"), capture_output=True, text=True, env=ENV)
    assert straight.returncode == 0, straight.stderr[-2000:]
    job = subprocess.Popen(train_model(linear_data, tmp_path / "b"), stdout=subprocess.PIPE, text=True, env=ENV)
    for line in job.stdout:  # SIGTERM inside epoch 2: its batches take a few seconds
        if line.startswith(f"[wam] epoch 1/{EPOCHS}"):
            time.sleep(0.5)
            job.send_signal(signal.SIGTERM)
            break
    stdout = job.stdout.read()
    assert job.wait(timeout=120) == 0
    assert "[wam] SIGTERM: checkpoint" in stdout, stdout
    stopped = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert stopped["epoch"] == 1 and stopped["batch"] > 0, (stopped["epoch"], stopped["batch"])  # mid-epoch
    assert sorted(p.name for p in (tmp_path / "b" / "checkpoints").iterdir()) == ["last.pt"]
    resumed = subprocess.run(
        [*train_model(linear_data, tmp_path / "b"), "--resume"], capture_output=True, text=True, env=ENV
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    actual = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    assert actual["epoch"] == expected["epoch"] == EPOCHS and actual["batch"] == 0
    for name, value in expected["model"].items():
        assert torch.equal(actual["model"][name], value), name
    timing = "train/windows_per_s"
    assert {k: v for k, v in actual["metrics"].items() if k != timing} == {
        k: v for k, v in expected["metrics"].items() if k != timing
    }
    assert not torch.equal(stopped["model"]["dynamics.net.0.weight"], actual["model"]["dynamics.net.0.weight"])
