"""``wam train``'s rank flags: bad input is one line and exit 2, before any simulator or process group starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

TRAIN = ["train", "--task", "WAM-Cartpole", "--num_envs", "4"]
TORCHRUN = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}


@pytest.mark.parametrize(
    "args, environment, message",
    [
        (["--distributed"], {}, "--distributed needs torchrun's WORLD_SIZE/RANK"),
        (["--num_procs", "2"], TORCHRUN, "--num_procs starts the ranks itself: under torchrun leave it out"),
    ],
)
def test_bad_rank_input_is_one_line_and_exit_2(args, environment, message, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN} | environment
    result = subprocess.run([sys.executable, "-m", "wam_isaac", *TRAIN, *args], capture_output=True, text=True,
                            env=env, cwd=tmp_path, timeout=120)  # fmt: skip
    assert result.returncode == 2, result.stdout + result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], result.stderr
    assert not (tmp_path / "logs").exists()
