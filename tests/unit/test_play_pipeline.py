"""Pieces of ``wam pipeline`` that need no simulator: the fine-tuned WAM is exported for ``wam eval`` with its own
weights and the pretraining's split, and the pipeline's overrides and reports are checked."""

from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from wam_isaac.cli.errors import UsageError
from wam_isaac.cli.pipeline import export_finetuned_wam, is_report_of, last_line, stage_overrides


def tiny_joint(hidden: int):
    from wam_isaac.models import JointWAM, TrunkCfg, WamSchema, model_cfg

    schema = WamSchema(state_keys={"obs/world_model/joint_pos": [2]}, action_shape=[1])
    return JointWAM(schema, model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=hidden, layers=1), head_hidden=8))


def test_the_finetuned_wam_is_exported_with_its_weights_and_the_pretrainings_config(tmp_path):
    from dataclasses import asdict

    from wam_isaac.training.checkpoint import save_checkpoint
    from wam_isaac.training.config import TrainModelCfg
    from wam_isaac.training.run import load_model

    torch.manual_seed(0)
    pretrained_model, tuned_model = tiny_joint(8), tiny_joint(8)
    cfg = TrainModelCfg(data=str(tmp_path / "data"), out=str(tmp_path), model=pretrained_model.cfg)
    cfg.train.history, cfg.train.val_fraction = 5, 0.25
    pretrained = tmp_path / "last.pt"
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    save_checkpoint(pretrained, {"config": config, "schema": pretrained_model.schema.to_dict(), "model": {}})
    finetuned = tmp_path / "model_19.pt"
    torch.save(
        {
            "actor_state_dict": {},
            "wam_state_dict": tuned_model.state_dict(),
            "wam_schema": tuned_model.schema.to_dict(),
            "wam_model_cfg": asdict(tuned_model.cfg),
        },
        finetuned,
    )
    out = tmp_path / "eval" / "finetuned_wam.pt"
    assert export_finetuned_wam(finetuned, pretrained, out)
    model, loaded_cfg, _ = load_model(out)
    assert (loaded_cfg.train.history, loaded_cfg.train.val_fraction, loaded_cfg.data) == (5, 0.25, cfg.data)
    for key, value in tuned_model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key

    plain = tmp_path / "model_ppo.pt"
    torch.save({"actor_state_dict": {}}, plain)
    assert not export_finetuned_wam(plain, pretrained, tmp_path / "none.pt")
    assert not (tmp_path / "none.pt").exists()


def test_overrides_go_to_a_stage_or_are_refused():
    tokens = ["train.batch_size=32", "model.trunk.hidden=64", "agent.algorithm.world_model_weight=0.5"]
    assert stage_overrides(tokens) == tokens
    for token, message in (("env.scene.num_envs=4", "bad override"), ("--bogus", "unknown option"), ("x", "bad")):
        with pytest.raises(UsageError, match=message):
            stage_overrides([token])


def test_a_report_counts_only_for_its_checkpoint_and_episodes(tmp_path):
    report = tmp_path / "play.json"
    assert not is_report_of(report, tmp_path / "a.pt", 4)
    report.write_text(json.dumps({"checkpoint": str(tmp_path / "a.pt"), "episodes": 4}))
    assert is_report_of(report, tmp_path / "a.pt", 4)
    assert not is_report_of(report, tmp_path / "b.pt", 4)
    assert not is_report_of(report, tmp_path / "a.pt", 8)
    assert is_report_of(report, tmp_path / "a.pt", None)


def test_a_failed_stage_is_named_by_its_last_output_line(tmp_path):
    log = tmp_path / "stage.log"
    log.write_text("start\n 10%|#  | 1/10\r 100%|###| 10/10\nwam generate: error: --out 'x' is not empty\n\n")
    assert last_line(log) == "wam generate: error: --out 'x' is not empty"
