"""``wam eval`` without a simulator: bad input is one line and exit code 2; a good run writes eval.json and plots."""

from __future__ import annotations

import json

import pytest
import torch
from cube_dataset import LENGTHS, write_cube_dataset

from wam_isaac.cli import main


def wam_eval(*args: str) -> int:
    with pytest.raises(SystemExit) as exit_info:
        main(["eval", *args])
    return exit_info.value.code


def one_error_line(capsys) -> str:
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith("wam eval: error: ")
    return lines[0]


def test_a_missing_checkpoint_is_one_line(cube_data, tmp_path, capsys):
    code = wam_eval("--checkpoint", str(tmp_path / "nope.pt"), "--data", str(cube_data), "--out", str(tmp_path / "e"))
    assert code == 2
    assert f"checkpoint '{tmp_path / 'nope.pt'}' does not exist" in one_error_line(capsys)


def test_a_file_that_is_not_our_checkpoint_is_one_line(cube_data, tmp_path, capsys):
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    assert wam_eval("--checkpoint", str(foreign), "--data", str(cube_data), "--out", str(tmp_path / "e")) == 2
    assert "is not a wam_isaac checkpoint (no format 'wam_isaac.checkpoint' entry)" in one_error_line(capsys)


def test_a_dataset_without_a_key_of_the_model_is_named(joint_checkpoint, tmp_path, capsys):
    other = write_cube_dataset(tmp_path / "other", [30, 30], drop="cube_ang_vel")
    assert wam_eval("--checkpoint", str(joint_checkpoint), "--data", str(other), "--out", str(tmp_path / "e")) == 2
    assert "dataset has no key 'obs/world_model/cube_ang_vel'" in one_error_line(capsys)


def test_a_task_other_than_the_datasets_is_refused(joint_checkpoint, cube_data, tmp_path, capsys):
    code = wam_eval(
        "--checkpoint",
        str(joint_checkpoint),
        "--data",
        str(cube_data),
        "--out",
        str(tmp_path),
        "--task",
        "WAM-Cartpole",
    )
    assert code == 2
    assert f"--task WAM-Cartpole but the dataset {cube_data} was generated with WAM-Push-Cube" in one_error_line(capsys)


def test_horizons_longer_than_every_episode_are_one_line(joint_checkpoint, cube_data, tmp_path, capsys):
    out = tmp_path / "e"
    code = wam_eval(
        "--checkpoint", str(joint_checkpoint), "--data", str(cube_data), "--out", str(out), "--horizons", "64"
    )
    assert code == 2
    assert "no validation episode has 68 steps" in one_error_line(capsys)
    assert not (out / "eval.json").exists()


def test_a_run_writes_the_report_and_plots_and_keeps_other_files(joint_checkpoint, cube_data, tmp_path, capsys):
    out = tmp_path / "eval"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    args = ["--checkpoint", str(joint_checkpoint), "--data", str(cube_data), "--out", str(out), "--horizons", "1", "4"]
    assert wam_eval(*args) == 0
    report = json.loads((out / "eval.json").read_text())
    assert {path.name for path in out.iterdir()} == {
        "notes.txt",
        "eval.json",
        "fidelity_vs_horizon.png",
        "trajectories.png",
    }
    fidelity = report["fidelity"]
    assert fidelity["horizons"] == [1, 4]
    # the two validation episodes (30 steps): window starts 0, 8, 16 for 4 + 4 steps, stride 8
    assert (fidelity["windows"], fidelity["episodes"], fidelity["skipped_episodes"]) == (6, 2, 0)
    assert report["episodes_scored"].startswith("validation split by env (val_fraction 0.25")
    penetration = report["physics"]["checks"]["penetration"]
    assert penetration["true"] == {"rate": 0.0, "violations": 0, "count": 6 * 4, "worst": pytest.approx(0, abs=1e-6)}
    from wam_isaac.evaluation.spec import physics_spec_for

    spec, _ = physics_spec_for("WAM-Push-Cube")
    assert report["physics"]["tolerances"]["penetration_m"] == spec.penetration_tolerance  # the task's spec
    assert report["closed_loop"] == {"applicable": False, "reason": "no --task given"}
    printed = capsys.readouterr().out
    assert (
        "fidelity on 6 windows from 2 episodes (0 too short): rollout error per state term, in physical units"
        in printed
    )
    cube_rows = printed[printed.index("cube_pos [m]") :].splitlines()[:4]
    assert [row.split()[-3] for row in cube_rows] == ["model", "copy_last", "constant_velocity", "model/copy-last"]
    assert cube_rows[3].split()[-2:] == [f"{v:.3f}" for v in fidelity["model_over_copy_last"]["cube_pos"]]

    # a second run refuses to replace the report, then replaces it (and only it) with --overwrite
    assert wam_eval(*args) == 2
    assert "eval.json exists: pass --overwrite to replace the evaluation outputs" in one_error_line(capsys)
    assert wam_eval(*args, "--overwrite") == 0
    assert (out / "notes.txt").read_text() == "mine"


def test_another_dataset_with_the_same_keys_is_scored_on_every_episode(joint_checkpoint, tmp_path):
    other = write_cube_dataset(tmp_path / "other", LENGTHS)
    out = tmp_path / "eval"
    assert wam_eval("--checkpoint", str(joint_checkpoint), "--data", str(other), "--out", str(out)) == 2  # 68 steps
    args = ["--checkpoint", str(joint_checkpoint), "--data", str(other), "--out", str(out), "--horizons", "16"]
    assert wam_eval(*args) == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["episodes_scored"].startswith("all episodes")
    assert (report["fidelity"]["episodes"], report["fidelity"]["skipped_episodes"]) == (7, 1)


def test_eval_is_registered_as_a_subcommand():
    from wam_isaac.cli import SUBCOMMANDS

    assert "eval" in SUBCOMMANDS
