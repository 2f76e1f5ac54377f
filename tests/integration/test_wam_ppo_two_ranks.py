"""Joint-WAM PPO on WAM-Cartpole under torchrun, 2 Gloo ranks of Isaac Lab on the CPU (``wam train``'s path): SIGTERM
to rank 1 alone mid-run -> both ranks stop after the same iteration, rank 0 writes the checkpoint, the job exits 0;
every parameter, normalizer and buffer of the joint WAM, the optimizer's moments and the learning rate are identical
on the two ranks (and in the checkpoint), while each rank's replay holds its own envs (seed 42 and 43)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

pytestmark = pytest.mark.integration

WORKER = Path(__file__).with_name("ppo_rank_dump.py")
NUM_ENVS = 8


def test_two_cpu_ranks_keep_one_joint_wam_and_stop_together_on_sigterm(tmp_path):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--max_restarts=0"]
    train = ["--task", "WAM-Cartpole", "--agent", "rsl_rl_wam_cfg_entry_point", "--num_envs", str(NUM_ENVS)]
    command = [*launcher, str(WORKER), str(tmp_path), *train, "--max_iterations", "50"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "1"}
    job = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in job.stdout:
        output.append(line)
        if line.startswith("[rank 1] pid "):
            time.sleep(1.0)  # inside the first iterations
            os.kill(int(line.split()[3]), signal.SIGTERM)
            break
    output += job.stdout.readlines()
    assert job.wait(timeout=600) == 0, "".join(output)[-3000:]
    ranks = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    first, second = ranks
    stopped = first["preempted_at"]
    assert stopped is not None and second["preempted_at"] == stopped < 49  # both stopped after the same iteration
    assert first["iteration"] == second["iteration"] == stopped + 1
    assert any("[wam] stop: checkpoint" in line for line in output), "".join(output)[-3000:]
    for name, value in first["wam"].items():
        assert torch.equal(value, second["wam"][name]), f"{name} differs between the ranks"
    std = first["wam"]["normalizers.state.std"]
    assert not torch.equal(std, torch.ones_like(std))  # fitted on the first rollout of both ranks
    for index, state in first["optimizer"]["state"].items():
        for key, value in state.items():
            assert torch.equal(value, second["optimizer"]["state"][index][key]), (index, key)
    assert first["learning_rate"] == second["learning_rate"]
    assert first["metrics"] == second["metrics"]
    # rank 0 alone logs and checkpoints; the checkpoint holds what both ranks hold
    checkpoint = torch.load(Path(first["log_dir"]) / f"model_{stopped}.pt", weights_only=False)
    assert checkpoint["iter"] == stopped
    for name, value in first["wam"].items():
        assert torch.equal(checkpoint["wam_state_dict"][name], value), name
    assert not list(Path(second["log_dir"]).glob("*.pt")) and Path(second["log_dir"]).parent == Path(first["log_dir"])
    # each rank's replay: its own envs' transitions
    replays = [r["replay"] for r in ranks]
    assert replays[0]["size"] == replays[1]["size"] == 16 * (stopped + 1)  # 16 steps per iteration
    assert replays[0]["states"].shape == replays[1]["states"].shape and replays[0]["states"].shape[1] == NUM_ENVS
    assert not torch.allclose(replays[0]["states"], replays[1]["states"])
