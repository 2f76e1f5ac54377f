"""``wam train``'s rank flags and WamPPO's pretrained checkpoint: bad input is one line and exit 2, before any
simulator or process group starts."""

from __future__ import annotations

import pytest

from wam_isaac.cli import main

TRAIN = ["train", "--task", "WAM-Cartpole", "--num_envs", "4"]
TORCHRUN = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0"}


@pytest.mark.parametrize(
    "args, environment, message",
    [
        (["--distributed"], {}, "--distributed needs torchrun's WORLD_SIZE/RANK"),
        (["--num_procs", "2"], TORCHRUN, "--num_procs starts the ranks itself: under torchrun leave it out"),
        (
            ["--agent", "rsl_rl_wam_cfg_entry_point", "agent.algorithm.pretrained_checkpoint=runs/nope.pt"],
            {},
            "pretrained checkpoint 'runs/nope.pt' does not exist",
        ),
    ],
)
def test_bad_rank_input_is_one_line_and_exit_2(args, environment, message, monkeypatch, capsys, tmp_path):
    for name in TORCHRUN:
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main([*TRAIN, *args])
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and message in errors[0], errors
    assert not (tmp_path / "logs").exists()
