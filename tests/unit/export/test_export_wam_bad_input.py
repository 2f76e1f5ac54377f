"""``wam export`` of ``wam train-model`` checkpoints on bad input: one line naming the problem, exit 2, nothing written,
no simulator started: a world model without a policy head (unless ``--world-model-only``), flags that do not fit the
checkpoint's kind, a dataset that is gone (the task is unknown), an existing ``--out``."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.cli import main
from wam_isaac.models import WamSchema, build_model, model_cfg
from wam_isaac.training.checkpoint import save_checkpoint
from wam_isaac.training.config import TrainModelCfg

SCHEMA = WamSchema(state_keys={"obs/world_model/joint_pos": [2]}, action_shape=[1])


def train_model_checkpoint(tmp_path, kind: str):
    from omegaconf import OmegaConf

    cfg = TrainModelCfg(data=str(tmp_path / "gone_dataset"), out=str(tmp_path / "run"), model=model_cfg(kind))
    model = build_model(SCHEMA, cfg.model)
    payload = {
        "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
        "schema": SCHEMA.to_dict(),
        "model": model.state_dict(),
        "epoch": 1,
    }
    return save_checkpoint(tmp_path / f"{kind}.pt", payload)


def run_wam(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["export", *map(str, args)])
    return exit_info.value.code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("kind", "flags", "message"),
    [
        ("gru", [], "is a gru world model without a policy head; pass --world-model-only"),
        ("mlp", [], "is a mlp world model without a policy head"),
        ("joint", [], "is not readable here, so its task is unknown; pass --task"),
        ("gru", ["--world-model-only"], "is not readable here, so its task is unknown; pass --task"),
        ("joint", ["--world-model", "{checkpoint}"], "--world-model adds a world model to an rsl-rl run checkpoint"),
        ("joint", ["--task", "WAM-Nope"], "task WAM-Nope is not registered here"),
    ],
)
def test_bad_train_model_exports_are_one_line_exit_2(tmp_path, capsys, kind, flags, message):
    checkpoint = train_model_checkpoint(tmp_path, kind)
    out = tmp_path / "exported"
    flags = [flag.format(checkpoint=checkpoint) for flag in flags]
    code, err = run_wam(capsys, "--checkpoint", checkpoint, "--out", out, *flags)
    assert code == 2 and err.count("\n") == 1 and err.startswith("wam export: error: ") and message in err, err
    assert not out.exists() and not list(tmp_path.glob(".exported*"))


def test_world_model_only_refuses_an_rsl_rl_checkpoint_and_world_model_must_be_ours(tmp_path, capsys):
    from test_export_bad_input import fake_run

    run_checkpoint = fake_run(tmp_path)
    code, err = run_wam(capsys, "--checkpoint", run_checkpoint, "--out", tmp_path / "x", "--world-model-only")
    assert code == 2 and "--world-model-only takes a wam train-model checkpoint" in err, err
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(2)}, junk)
    code, err = run_wam(capsys, "--checkpoint", run_checkpoint, "--out", tmp_path / "x", "--world-model", junk)
    assert code == 2 and err.count("\n") == 1 and "is not a wam_isaac checkpoint" in err, err
    assert not (tmp_path / "x").exists()
