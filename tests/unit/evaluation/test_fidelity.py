"""The fidelity metric: zero on the truth, the known value for a known offset, what training logs on a rollout."""

from __future__ import annotations

import math

import pytest
import torch
from cube_dataset import HISTORY, tiny_config
from cube_states import SCHEMA

from wam_isaac.data.reader import split_by_episode
from wam_isaac.evaluation.fidelity import evaluate_fidelity, forecast, horizon_errors
from wam_isaac.models import EnsembleWorldModel, model_cfg
from wam_isaac.training.run import load_model
from wam_isaac.training.sequences import SequenceTable


def random_forecast(batch: int = 5, steps: int = 8) -> torch.Tensor:
    return torch.randn(batch, steps, SCHEMA.state_dim, generator=torch.Generator().manual_seed(0))


def test_the_truth_compared_with_itself_has_zero_error():
    truth = random_forecast()
    errors = horizon_errors(truth, truth, torch.rand(SCHEMA.state_dim) + 0.1, SCHEMA, [1, 4, 8])
    assert set(errors) == {"all", "joint_pos", "joint_vel", "cube_pos", "cube_quat", "cube_lin_vel", "cube_ang_vel"}
    assert all(value == 0.0 for values in errors.values() for value in values)


def test_a_known_offset_gives_the_known_normalized_rmse():
    truth, std = random_forecast(), torch.full((SCHEMA.state_dim,), 0.5)
    cube = SCHEMA.term("cube_pos")
    predicted = truth.clone()
    predicted[:, 3:, cube.start : cube.stop] += 0.1  # 0.2 state std off, from horizon 4 on
    errors = horizon_errors(predicted, truth, std, SCHEMA, [1, 4, 8])
    assert errors["cube_pos"] == pytest.approx([0.0, 0.2, 0.2])
    assert errors["joint_pos"] == [0.0, 0.0, 0.0]
    # overall: 3 of the 19 dimensions off by 0.2
    assert errors["all"] == pytest.approx([0.0, 0.2 * math.sqrt(3 / 19), 0.2 * math.sqrt(3 / 19)])


@pytest.mark.parametrize("ensemble", [1, 3])
def test_the_trainers_validation_errors_equal_a_hand_computed_rollout_rmse(cube_data, tmp_path, ensemble):
    """What training logs as ``val/nrmse@k`` is the RMSE of the (members' mean) rollout over the state std."""
    from dataclasses import replace

    from wam_isaac.training.run import make_trainer

    cfg = tiny_config(cube_data, tmp_path, kind="mlp", ensemble=ensemble)
    cfg.train = replace(cfg.train, val_horizons=[1, 3, 8])
    trainer = make_trainer(cfg, log=None)
    trainer.model.normalizers.state.std.uniform_(0.5, 2.0)
    figures = trainer.validate()
    batch = trainer._val_batch(HISTORY + 8)
    with torch.no_grad():
        members = trainer.model.members if ensemble > 1 else [trainer.model]
        rollouts = [m.rollout(batch.states, batch.instruction, batch.actions, HISTORY).states for m in members]
    error = ((torch.stack(rollouts).mean(0) - batch.states[:, HISTORY:]) / trainer.model.normalizers.state.std).numpy()
    cube = SCHEMA.term("cube_pos")
    for k in (1, 3, 8):
        assert figures[f"nrmse@{k}"] == pytest.approx(math.sqrt((error[:, k - 1] ** 2).mean()), rel=1e-5)
        expected_cube = math.sqrt((error[:, k - 1, cube.start : cube.stop] ** 2).mean())
        assert figures[f"nrmse@{k}/cube_pos"] == pytest.approx(expected_cube, rel=1e-5)


def test_an_ensemble_is_scored_on_its_members_mean_trajectory_with_their_spread(cube_data):
    torch.manual_seed(0)
    ensemble = EnsembleWorldModel(SCHEMA, model_cfg("mlp", ensemble=3, head_hidden=16))
    table = SequenceTable(cube_data, SCHEMA)
    batch = table.gather(table.window_starts(HISTORY + 4, 8), HISTORY + 4)
    mean, std, _ = forecast(ensemble, batch.states, batch.instruction, batch.actions, HISTORY)
    with torch.no_grad():
        members = torch.stack(
            [m.rollout(batch.states, batch.instruction, batch.actions, HISTORY).states for m in ensemble.members]
        )
    torch.testing.assert_close(mean, members.mean(0))
    torch.testing.assert_close(std, members.std(0, unbiased=False))
    assert float(std.mean()) > 0.0  # independently initialized members disagree


def test_fidelity_uses_windows_of_history_plus_the_longest_horizon_and_counts_the_short_episodes(
    cube_data, joint_checkpoint
):
    model, cfg, _ = load_model(joint_checkpoint)
    val_ids = split_by_episode(cube_data, cfg.train.val_fraction, seed=cfg.train.seed)[1]
    table = SequenceTable(cube_data, model.schema, val_ids)
    result = evaluate_fidelity(model, table, HISTORY, [16, 1, 4], stride=8)
    long_enough = int((table.lengths >= HISTORY + 16).sum())
    assert result.horizons == [1, 4, 16]
    assert (result.episodes, result.skipped_episodes) == (long_enough, len(val_ids) - long_enough)
    assert result.windows == 2 * long_enough  # starts 0 and 8 of each 30-step episode
    assert result.predicted.shape == result.true.shape == (result.windows, 17, SCHEMA.state_dim)
    torch.testing.assert_close(result.predicted[:, 0], result.true[:, 0])  # both start at the last true state
    assert result.ensemble_std is None
    assert len(result.nrmse["all"]) == 3 and all(math.isfinite(v) for v in result.nrmse["all"])
    with pytest.raises(ValueError, match="no validation episode has 104 steps"):
        evaluate_fidelity(model, table, HISTORY, [100])
