"""``torchrun --nproc_per_node=2 -m wam_isaac train-model`` end to end (Gloo, CPU): one config, one TensorBoard event
file and one set of checkpoints (rank 0's), a checkpoint that records 2 ranks, and one rank's progress lines."""

from __future__ import annotations

import os
import subprocess
import sys

from wam_isaac.training.checkpoint import load_checkpoint


def test_two_ranks_log_and_checkpoint_once(linear_data, tmp_path):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "wam_isaac",
               "train-model", "--data", str(linear_data), "--model", "gru", "--history", "4", "--forecast", "4",
               "--epochs", "1", "--out", str(out), "train.batch_size=32", "model.trunk.hidden=16"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("[wam] epoch 1/1") == 1 and ", 2 ranks" in result.stdout, result.stdout
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith("events")) == ["checkpoints", "config.yaml"]
    assert len(list(out.glob("events.out.tfevents.*"))) == 1
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt", "model_1.pt"]
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pt")
    assert (checkpoint["epoch"], checkpoint["world_size"], checkpoint["batch"]) == (1, 2, 0)
