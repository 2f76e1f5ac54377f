"""The ``wam`` command line: bad input gives one line naming the problem and exit code 2 (no simulator starts)."""

from __future__ import annotations

import json
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
        (["dagger", "--task", "WAM-Quadruped-Flat", "--out", "x"], "task WAM-Quadruped-Flat has no scripted expert"),
        (["dagger", "--task", "WAM-Push-Cube", "--out", "x", "--beta", "1.5"], "--beta must be in [0, 1], got 1.5"),
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


GENERATE = ["generate", "--task", "WAM-Cartpole", "--num_envs", "4", "--steps", "10", "--policy", "random"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--policy", "walk", "--out", "{tmp}/new"], "unknown policy 'walk'"),
        (["--steps", "0", "--out", "{tmp}/new"], "--steps: must be >= 1, got 0"),
        (["--out", "/proc/1/forbidden"], "cannot write to /proc/1/forbidden"),
        (["--out", "{tmp}/old"], "is not empty: pass --overwrite"),
        (["--noise", "-1", "--out", "{tmp}/new"], "--noise must be >= 0"),
    ],
)
def test_generate_bad_input_is_refused_before_anything_is_written(args, message, tmp_path):
    old = tmp_path / "old"
    old.mkdir()
    (old / "manifest.json").write_text("{}")
    argv = GENERATE + [arg.replace("{tmp}", str(tmp_path)) for arg in args]  # a repeated flag's last value wins
    result = wam(*argv)
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert (old / "manifest.json").read_text() == "{}", "an existing dataset must be left untouched"
    assert not (tmp_path / "new").exists() or not any((tmp_path / "new").iterdir())


def test_inspect_verify_names_the_corrupted_shard(tmp_path):
    import numpy as np

    from wam_isaac.data import DatasetWriter, Episode, KeySpec

    specs = {"actions": KeySpec((2,), unit="N", description="cart force, pole torque"), "rewards": KeySpec(())}
    with DatasetWriter(tmp_path / "d", "WAM-Cartpole", "h", specs, episodes_per_shard=1, compression=None) as writer:
        for i in range(3):
            data = {"actions": np.full((5, 2), i, np.float32), "rewards": np.zeros(5, np.float32)}
            writer.write(Episode(data=data, env_id=i, seed=0, success=True, dr={}, attrs={}))
    ok = wam("inspect", str(tmp_path / "d"), "--verify", "--json")
    assert ok.returncode == 0, ok.stderr
    summary = json.loads(ok.stdout)
    assert summary["transitions"] == 15 and summary["episodes"] == 3 and summary["verify"]["ok"]
    text = wam("inspect", str(tmp_path / "d")).stdout.splitlines()
    row = next(i for i, line in enumerate(text) if line.split()[:1] == ["actions"])
    assert text[row].split()[-1] == "[N]" and text[row + 1].strip() == "cart force, pole torque"
    shard = tmp_path / "d" / "shard_00001.h5"
    raw = bytearray(shard.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    shard.write_bytes(bytes(raw))
    bad = wam("inspect", str(tmp_path / "d"), "--verify")
    assert bad.returncode == 1
    assert "shard_00001.h5" in bad.stderr and "shard_00000.h5" not in bad.stderr


def test_inspect_of_a_directory_without_a_dataset_is_one_line(tmp_path):
    result = wam("inspect", str(tmp_path))
    assert result.returncode == 2 and "cannot read dataset" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("task", ["WAM-Cartpole", "WAM-Push-Cube", "WAM-Quadruped-Flat"])
def test_task_env_cfg_applies_checked_overrides_on_the_device(task):
    import wam_isaac_tasks  # noqa: F401  (registers the tasks)
    from wam_isaac.cli.common import task_env_cfg
    from wam_isaac.cli.errors import UsageError

    env_cfg, agent_cfg = task_env_cfg(task, ["env.episode_length_s=3.25"], "cpu")
    assert env_cfg.episode_length_s == 3.25 and env_cfg.sim.device == "cpu"
    assert agent_cfg is not None
    default_cfg, _ = task_env_cfg(task, [], "cpu")
    assert default_cfg.episode_length_s != 3.25
    with pytest.raises(UsageError, match="'env.scene' has no field 'nope'"):
        task_env_cfg(task, ["env.scene.nope=4"], "cpu")
