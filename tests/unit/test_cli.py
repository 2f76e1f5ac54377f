"""The ``wam`` command line: bad input gives one line naming the problem and exit code 2 (no simulator starts)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def wam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wam_isaac", *args], capture_output=True, text=True, timeout=120)


def test_tasks_lists_the_three_wam_tasks():
    result = wam("tasks")
    assert result.returncode == 0, result.stderr
    listed = [line.split()[0] for line in result.stdout.splitlines()]
    assert {"WAM-Cartpole", "WAM-Push-Cube", "WAM-Quadruped-Flat"} <= set(listed)
    assert all(task.startswith("WAM-") for task in listed)


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--task", "WAM-Nope"], "unknown task 'WAM-Nope'"),
        (["train", "--task", "WAM-Cartpole", "--num_envs", "0"], "--num_envs: must be >= 1, got 0"),
        (["train", "--task", "WAM-Cartpole", "--num_envs", "many"], "expected a positive integer, got 'many'"),
        (["train", "--task", "WAM-Cartpole", "--max_iterations", "-3"], "--max_iterations: must be >= 1"),
        (["train", "--task", "WAM-Cartpole", "env.scene.num_envs"], "malformed override 'env.scene.num_envs'"),
        (["train", "--task", "WAM-Cartpole", "scene.num_envs=4"], "must start with env. or agent."),
        (["train", "--task", "WAM-Cartpole", "env.scene.nope=4"], "'env.scene' has no field 'nope'"),
        (["train", "--task", "WAM-Cartpole", "agent.algorithm.lr=1"], "'agent.algorithm' has no field 'lr'"),
        (["train", "--task", "WAM-Cartpole", "--device", "tpu"], "unknown device 'tpu'"),
        (["train", "--task", "WAM-Cartpole", "--bogus"], "unknown option '--bogus'"),
        (["bench", "nope"], "unknown benchmark 'nope'"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args, message):
    result = wam(*args)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert "Traceback" not in result.stderr


def test_isaaclab_list_envs_finds_the_tasks_through_the_entry_point(tmp_path):
    # run outside the repository so Isaac Lab discovers the tasks through the installed entry point only
    isaaclab = Path(sys.executable).with_name("isaaclab")
    result = subprocess.run(
        [str(isaaclab), "list_envs", "--keyword", "WAM-"], capture_output=True, text=True, timeout=300, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    for task in ("WAM-Cartpole", "WAM-Push-Cube", "WAM-Quadruped-Flat"):
        assert f"| {task} " in result.stdout, f"{task} missing from `isaaclab list_envs`"
