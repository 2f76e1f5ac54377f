"""Trainer: it overfits a tiny dataset, recovers a known linear system, gives an ensemble whose spread grows off
the data, and resumes exactly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from linear_system import A, B, small_cfg

from wam_isaac.training.checkpoint import load_checkpoint
from wam_isaac.training.objectives import model_loss
from wam_isaac.training.run import make_trainer

OVERFIT_MSE = 0.01
"""Train dynamics MSE (normalized delta units) the GRU must reach on the smooth dataset; an untrained model is at
about 4.5 (0.005 measured after training)."""
MATRIX_TOLERANCE = 0.05
"""Largest error of an entry of the trained model's Jacobians vs A and B (0.026 measured)."""
VARIANCE_RATIO = 20.0
"""Ensemble variance off the data over variance on it, at least (about 260 measured)."""


def dynamics_mse(trainer) -> float:
    """The world-model loss's dynamics MSE over every training window (no gradient)."""
    table, span = trainer.train_table, trainer.span
    with torch.no_grad():
        batch = table.gather(table.window_starts(span), span)
        _, terms = model_loss(trainer.model, batch, trainer.cfg.train.history, trainer.cfg.train.loss)
    return float(terms["dynamics_mse"])


def test_gru_overfits_a_tiny_smooth_dataset(smooth_data, tmp_path):
    # all 4 episodes trained on (val_fraction 0): 212 windows of H = 4 true steps and F = 4 autoregressive ones
    cfg = small_cfg(smooth_data, tmp_path, "gru", epochs=30, lr=1.0e-2)
    trainer = make_trainer(cfg, log=None)
    untrained = dynamics_mse(trainer)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    trained = dynamics_mse(trainer)
    assert untrained > 1.0
    assert trained < OVERFIT_MSE, f"train dynamics MSE {trained:.4f} (untrained {untrained:.2f})"


def linearization(model, state, instruction, action) -> tuple[np.ndarray, np.ndarray]:
    """Jacobians of the mean next state w.r.t. the state (S, S) and the action (S, A) at one point (one-step model,
    previous action 0 as in training with H = 1)."""

    def mean_next_state(state, action):
        tokens = model.tokens(state[None, None], instruction[None, None], torch.zeros(1, 1, action.numel()))
        features, _ = model.encode(tokens)
        return model.next_state(state, model.predict_next(features[0, -1], action).delta_mean)

    jacobian_state, jacobian_action = torch.autograd.functional.jacobian(mean_next_state, (state, action))
    return jacobian_state.numpy(), jacobian_action.numpy()


def test_mlp_recovers_the_matrices_of_a_linear_system(linear_data, tmp_path):
    cfg = small_cfg(linear_data, tmp_path, "mlp", hidden=64, history=1, forecast=1, epochs=30, batch_size=64)
    trainer = make_trainer(cfg, log=None)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    model, table = trainer.model.eval(), trainer.train_table
    for row in (5, 100, 400, 700, 1000):  # points inside the data
        jacobian_state, jacobian_action = linearization(model, table.states[row], table.instruction[row],
                                                        table.actions[row])  # fmt: skip
        np.testing.assert_allclose(jacobian_state, A, atol=MATRIX_TOLERANCE, rtol=0, err_msg=f"A at row {row}")
        np.testing.assert_allclose(jacobian_action, B, atol=MATRIX_TOLERANCE, rtol=0, err_msg=f"B at row {row}")


def test_ensemble_spread_is_small_on_the_data_and_large_off_it(linear_data, tmp_path):
    cfg = small_cfg(linear_data, tmp_path, "mlp", ensemble=4, history=1, forecast=1, epochs=10, batch_size=64)
    trainer = make_trainer(cfg, log=None)
    for _ in range(cfg.train.epochs):
        trainer.train_epoch()
    ensemble, table = trainer.model.eval(), trainer.train_table
    states, instruction, actions = table.states[:500], table.instruction[:500], table.actions[:500]

    def mean_member_variance(states: torch.Tensor) -> float:
        with torch.no_grad():
            predictions = []
            for member in ensemble.members:
                features, _ = member.encode(member.tokens(states[:, None], instruction[:, None], 0 * actions[:, None]))
                predictions.append(member.next_state(states, member.predict_next(features[:, 0], actions).delta_mean))
        return float(torch.stack(predictions).var(0, unbiased=False).mean())

    on_data = mean_member_variance(states)
    off_data = mean_member_variance(10.0 * states)  # |s| up to ~30; the data's |s| stays below 3.
    assert off_data > VARIANCE_RATIO * on_data, f"variance on the data {on_data:.2e}, off it {off_data:.2e}"


class Interrupted(Exception):
    """Stands for a job killed after its 3rd epoch (before that epoch's checkpoint)."""


def stop_at_epoch_3(line: str) -> None:
    if line.startswith("[wam] epoch 3/"):
        raise Interrupted


def test_interrupted_and_resumed_run_equals_uninterrupted(smooth_data, tmp_path):
    common = {"epochs": 4, "save_every": 2, "deterministic": True, "val_fraction": 0.25}
    straight = make_trainer(small_cfg(smooth_data, tmp_path / "straight", "gru", **common), log=None)
    straight.fit()

    cfg = small_cfg(smooth_data, tmp_path / "interrupted", "gru", **common)
    with pytest.raises(Interrupted):
        make_trainer(cfg, log=stop_at_epoch_3).fit()
    checkpoint = load_checkpoint(tmp_path / "interrupted" / "checkpoints" / "last.pt")
    assert checkpoint["epoch"] == 2
    resumed = make_trainer(cfg, resume=checkpoint, log=None)
    assert resumed.epoch == 2
    resumed.fit()

    assert resumed.epoch == straight.epoch == 4
    expected, actual = straight.model.state_dict(), resumed.model.state_dict()
    assert expected.keys() == actual.keys()
    for name in expected:
        assert torch.equal(actual[name], expected[name]), name
    # not vacuous: epochs 3 and 4 changed the parameters
    assert not torch.equal(checkpoint["model"]["dynamics.net.0.weight"], actual["dynamics.net.0.weight"])
    timing = {"train/windows_per_s"}
    assert {k: v for k, v in resumed.metrics.items() if k not in timing} == {
        k: v for k, v in straight.metrics.items() if k not in timing
    }


def test_fewer_windows_than_one_batch_is_refused(smooth_data, tmp_path):
    # 4 episodes of 60 steps: 4 * (60 - 8 + 1) = 212 windows of 8 steps; batches drop the last partial one
    with pytest.raises(ValueError, match="212 training windows, fewer than one batch of 256: lower train.batch_size"):
        make_trainer(small_cfg(smooth_data, tmp_path, "gru", batch_size=256), log=None)
    assert len(make_trainer(small_cfg(smooth_data, tmp_path, "gru", batch_size=212), log=None).train_table) == 240
