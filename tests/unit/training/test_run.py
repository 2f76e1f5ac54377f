"""run: a model saved by the trainer and rebuilt by ``load_model`` predicts exactly as it did; a checkpoint does not
resume on a dataset of another schema; a config saved before beta-NLL loads with the plain NLL it trained with."""

from __future__ import annotations

import pytest
import torch
from linear_system import small_cfg
from omegaconf import OmegaConf

from wam_isaac.models import EnsembleWorldModel, JointWAM, SchemaError
from wam_isaac.training.checkpoint import load_checkpoint
from wam_isaac.training.run import config_from_dict, load_model, make_trainer


def predictions(model, batch, history: int) -> list[torch.Tensor]:
    """Every rollout's states and head outputs (each member of an ensemble), and a joint WAM's action."""
    rollouts = model.rollout(batch.states, batch.instruction, batch.actions, history)
    outputs = []
    for rollout in rollouts if isinstance(rollouts, list) else [rollouts]:
        outputs += [rollout.states, rollout.predictions.delta_log_std, rollout.predictions.reward]
    if isinstance(model, JointWAM):
        outputs.append(model.act(batch.states[:, :history], batch.instruction[:, :history], batch.actions[:, :history]))
    return outputs


@pytest.mark.parametrize(("kind", "ensemble"), [("gru", 1), ("mlp", 2), ("joint", 1)])
def test_save_then_load_model_predicts_identically(smooth_data, tmp_path, kind, ensemble):
    trainer = make_trainer(small_cfg(smooth_data, tmp_path, kind, ensemble=ensemble, epochs=1), log=None)
    trainer.fit()  # writes checkpoints/model_1.pt and last.pt
    table, span = trainer.train_table, trainer.span
    batch = table.gather(table.window_starts(span)[:16], span)
    with torch.no_grad():
        expected = predictions(trainer.model.eval(), batch, trainer.cfg.train.history)

    model, cfg, checkpoint = load_model(tmp_path / "checkpoints" / "last.pt")
    assert type(model) is type(trainer.model) and (cfg.model.kind, checkpoint["epoch"]) == (kind, 1)
    assert not model.training
    with torch.no_grad():
        actual = predictions(model, batch, cfg.train.history)
    assert len(actual) == len(expected) == (3 * ensemble + (kind == "joint"))
    for got, want in zip(actual, expected, strict=True):
        assert torch.equal(got, want)
    # the fitted normalizers came from the checkpoint (a fresh model has mean 0, std 1)
    normalizers = model.members[0].normalizers if isinstance(model, EnsembleWorldModel) else model.normalizers
    assert torch.equal(normalizers.state.mean, table.states.double().mean(0).float())


def test_resume_on_a_dataset_of_another_schema_names_the_key(smooth_data, tmp_path):
    cfg = small_cfg(smooth_data, tmp_path, "gru", epochs=1)
    make_trainer(cfg, log=None).fit()
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    checkpoint["schema"]["state_keys"]["obs/world_model/vel"] = [2]  # as if trained on another task's data
    message = "key 'obs/world_model/vel' has shape \\[1\\] in the dataset, the model expects \\[2\\]"
    with pytest.raises(SchemaError, match=message):
        make_trainer(cfg, resume=checkpoint, log=None)


@pytest.mark.parametrize(("saved_beta", "loaded_beta"), [(None, 0.0), (0.25, 0.25), (0.5, 0.5), (0.0, 0.0)])
def test_a_config_saved_before_beta_nll_loads_with_the_plain_nll(tmp_path, saved_beta, loaded_beta):
    """A checkpoint's config without ``train.loss.dynamics_beta`` trained on the plain NLL (beta 0), so it loads
    with 0.0, not the default 0.5; a saved beta loads as saved; the other fields load as saved either way."""
    cfg = small_cfg(tmp_path / "data", tmp_path / "run", "mlp", lr=1.0e-3)
    cfg.train.loss.reward_weight = 0.3
    assert cfg.train.loss.dynamics_beta == 0.5  # the default a new run trains with
    saved = OmegaConf.to_container(OmegaConf.structured(cfg))  # as the trainer writes it into checkpoints
    if saved_beta is None:
        del saved["train"]["loss"]["dynamics_beta"]
    else:
        saved["train"]["loss"]["dynamics_beta"] = saved_beta
    loaded = config_from_dict(saved)
    assert loaded.train.loss.dynamics_beta == loaded_beta
    assert (loaded.train.lr, loaded.train.loss.reward_weight, loaded.model.kind) == (1.0e-3, 0.3, "mlp")
