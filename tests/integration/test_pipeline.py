"""``wam pipeline`` as a user runs it (a subprocess, cleanrl-style), at a tiny budget on WAM-Cartpole: every stage
runs and hands its artifact to the next (the fine-tune starts from the pretraining's checkpoint, the evaluation scores
the fine-tune's checkpoint and its world model), and a rerun skips every stage."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from wam_isaac.cli import main

pytestmark = pytest.mark.integration

TASK, GEN_ENVS, GEN_STEPS = "WAM-Cartpole", 8, 40
TINY = ["--gen_envs", str(GEN_ENVS), "--gen_steps", str(GEN_STEPS), "--epochs", "1", "--hidden", "32"]
TINY += ["--num_envs", "8", "--max_iterations", "2", "--episodes", "4", "--eval_envs", "4"]
TINY += ["train.batch_size=32", "--horizons", "1", "8"]  # 40-step episodes: 8 steps of history + 8 ahead fit


def pipeline(out: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "wam_isaac", "pipeline", "--task", TASK, "--out", str(out), *TINY]
    return subprocess.run(command, capture_output=True, text=True, timeout=1200)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("pipeline") / "cartpole"
    first = pipeline(out)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    second = pipeline(out)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    return out, first.stdout, second.stdout


def test_each_stage_prints_its_progress_and_the_rerun_skips_them(runs):
    _, first, second = runs
    for stage in ("1/4 generate", "2/4 pretrain", "3/4 finetune", "4/4 evaluate"):
        assert sum(f"[wam pipeline] {stage}: done in" in line for line in first.splitlines()) == 1, first
        assert sum(f"[wam pipeline] {stage}: skipped" in line for line in second.splitlines()) == 1, second


def test_artifacts_are_handed_from_stage_to_stage(runs):
    out, _, _ = runs
    summary = json.loads((out / "pipeline.json").read_text())["stages"]
    assert summary["generate"]["transitions"] == GEN_ENVS * GEN_STEPS
    pretrained = out / "pretrain" / "checkpoints" / "last.pt"
    assert Path(summary["pretrain"]["checkpoint"]) == pretrained and summary["pretrain"]["epochs"] == 1

    # the fine-tune is joint-WAM PPO started from the pretraining's checkpoint
    run_dir, finetuned = Path(summary["finetune"]["run_dir"]), Path(summary["finetune"]["checkpoint"])
    agent = yaml.safe_load((run_dir / "params" / "agent.yaml").read_text())
    assert agent["algorithm"]["class_name"] == "wam_isaac.training.wam_ppo:WamPPO"
    assert Path(agent["algorithm"]["pretrained_checkpoint"]) == pretrained
    assert finetuned == run_dir / "model_1.pt", "2 iterations: rsl-rl's last checkpoint is model_1.pt"

    # the evaluation scored that checkpoint, and the pretrained WAM beside it, with the episodes asked for
    evaluate = summary["evaluate"]
    for name, checkpoint in (("finetuned", finetuned), ("pretrained", pretrained)):
        played = json.loads((out / "eval" / name / "play.json").read_text())
        assert Path(played["checkpoint"]) == checkpoint and played["episodes"] == 4
        assert evaluate[name]["success_rate"] == sum(played["per_episode"]["success"]) / 4

    # the world model scored is the fine-tuned one: its weights are the fine-tune checkpoint's, not the pretraining's
    report = json.loads((out / "eval" / "world_model" / "eval.json").read_text())
    scored = torch.load(report["checkpoint"], weights_only=True)["model"]
    tuned = torch.load(finetuned, weights_only=True)["wam_state_dict"]
    initial = torch.load(pretrained, weights_only=True)["model"]
    assert scored.keys() == tuned.keys() == initial.keys()
    assert all(torch.equal(scored[key], tuned[key]) for key in tuned)
    assert any(not torch.equal(tuned[key], initial[key]) for key in tuned), "the fine-tune changed the WAM"
    assert report["fidelity"]["horizons"] == [1, 8]
    assert evaluate["world_model"]["model_over_copy_last"] == report["fidelity"]["model_over_copy_last"]


def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    for argv, message in (
        (["--task", "WAM-Nope"], "unknown task 'WAM-Nope'"),
        (["--task", TASK, "env.scene.num_envs=4"], "bad override 'env.scene.num_envs=4'"),
        (["--task", TASK, "--gen_noise", "-1"], "--gen_noise must be >= 0"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(["pipeline", "--out", str(tmp_path / "p"), *argv])
        assert exit_info.value.code == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and message in error, error
    assert not (tmp_path / "p").exists(), "nothing is created for bad input"
