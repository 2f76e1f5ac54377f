"""``wam export`` on bad input: one line naming the problem, exit 2, nothing written (no simulator is started)."""

from __future__ import annotations

import json

import pytest
import torch

from wam_isaac.cli import main
from wam_isaac.export.run_dir import load_params_yaml


def fake_run(tmp_path, task="WAM-Cartpole", state=None, manifest=True):
    run = tmp_path / "logs" / "run"
    (run / "params").mkdir(parents=True)
    torch.save(state if state is not None else {"actor_state_dict": {}, "iter": 3}, run / "model_3.pt")
    if manifest:
        (run / "run.json").write_text(json.dumps({"library": "rsl_rl", "task": task, "metadata": {}}))
        (run / "params" / "env.yaml").write_text("decimation: 2\n")
        (run / "params" / "agent.yaml").write_text("seed: 1\n")
    return run / "model_3.pt"


def cases(tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint at all")
    return {
        "does not exist": tmp_path / "missing.pt",
        "is not a torch checkpoint": junk,
        "holds no policy (no 'actor_state_dict'": fake_run(tmp_path / "a", state={"model": {}, "epoch": 4}),
        "is not in an rsl-rl run directory": fake_run(tmp_path / "b", manifest=False),
        "takes rsl-rl runs of WAM-* tasks": fake_run(tmp_path / "c", task="Isaac-Cartpole-Direct-v0"),
    }


def run_wam(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", *map(str, args)])
    return exit_info.value.code, capsys.readouterr().err


def test_bad_checkpoints_are_one_line_exit_2_and_write_nothing(tmp_path, capsys):
    for message, checkpoint in cases(tmp_path).items():
        out = tmp_path / "exported"
        code, err = run_wam(capsys, "--checkpoint", checkpoint, "--out", out)
        assert code == 2, (message, err)
        assert err.count("\n") == 1 and err.startswith("wam export: error: ") and message in err, err
        assert not out.exists()
        assert not list(tmp_path.glob(".exported*")), "no temporary directory left behind"


def test_existing_out_without_overwrite_is_refused_and_kept(tmp_path, capsys):
    out = tmp_path / "exported"
    out.mkdir()
    (out / "policy.onnx").write_bytes(b"previous export")
    code, err = run_wam(capsys, "--checkpoint", fake_run(tmp_path), "--out", out)
    assert code == 2 and err.count("\n") == 1 and "exists; pass --overwrite" in err
    assert (out / "policy.onnx").read_bytes() == b"previous export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["exported", "logs"]


def test_params_yaml_tags_are_read_without_constructing_objects():
    text = "a: !!python/tuple\n- 1.0\n- 2.0\nids: !!python/object/apply:builtins.slice\n- null\n- null\n- null\n"
    assert load_params_yaml(text) == {"a": [1.0, 2.0], "ids": [None, None, None]}
