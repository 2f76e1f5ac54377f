"""Objectives: n-step value targets (scaled rewards) worked out by hand, the Gaussian NLL against
torch.distributions, and the assembly of the world-model loss (history part + forecast part) under teacher forcing."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from wam_isaac.models import Normalizers, TrunkCfg, WamSchema, WorldModel, model_cfg
from wam_isaac.training.objectives import LossCfg, gaussian_nll, value_targets, world_model_loss
from wam_isaac.training.sequences import Sequences


def three_steps(terminated: list[float]) -> tuple[SimpleNamespace, Sequences]:
    """A model stand-in whose reward normalizer has mean 1 and std 2, and one window of rewards [1, 2, 3]."""
    normalizers = Normalizers(state_dim=1, instruction_dim=0, action_dim=1)
    normalizers.reward.mean.fill_(1.0)
    normalizers.reward.std.fill_(2.0)
    empty = torch.zeros(1, 3, 0)
    batch = Sequences(
        states=torch.zeros(1, 3, 1),
        instruction=empty,
        actions=torch.zeros(1, 3, 1),
        rewards=torch.tensor([[1.0, 2.0, 3.0]]),
        terminated=torch.tensor([terminated]),
        contacts=empty,
    )
    return SimpleNamespace(normalizers=normalizers), batch


# scaled rewards r / sigma = [0.5, 1, 1.5] (scaled, not shifted: the mean 1 plays no part); V = [7, 8, 10];
# gamma = 0.5
@pytest.mark.parametrize(
    ("terminated", "expected"),
    [
        # no termination: G_2 = V_2 = 10; G_1 = 1 + 0.5 * 10 = 6; G_0 = 0.5 + 0.5 * 6 = 3.5
        ([0.0, 0.0, 0.0], [3.5, 6.0, 10.0]),
        # terminated at step 1: G_1 = r_1 / sigma = 1 (no bootstrap past it); G_0 = 0.5 + 0.5 * 1 = 1
        ([0.0, 1.0, 0.0], [1.0, 1.0, 10.0]),
        # terminated at the last step: G_2 = r_2 / sigma = 1.5 (its reward, not V_2 and not 0); G_1 = 1 + 0.75 = 1.75;
        # G_0 = 0.5 + 0.5 * 1.75 = 1.375
        ([0.0, 0.0, 1.0], [1.375, 1.75, 1.5]),
    ],
)
def test_value_targets_are_n_step_returns(terminated, expected):
    model, batch = three_steps(terminated)
    targets = value_targets(model, batch, torch.tensor([[7.0, 8.0, 10.0]]), gamma=0.5)
    torch.testing.assert_close(targets, torch.tensor([expected]))


def test_gaussian_nll_is_negated_normal_log_prob():
    generator = torch.Generator().manual_seed(0)
    mean, log_std, target = (torch.randn(4, 5, generator=generator) for _ in range(3))
    expected = -torch.distributions.Normal(mean, log_std.exp()).log_prob(target)
    torch.testing.assert_close(gaussian_nll(mean, log_std, target), expected)
    # at the mean with sigma = 1: 0.5 log(2 pi)
    torch.testing.assert_close(gaussian_nll(torch.zeros(1), torch.zeros(1), torch.zeros(1)), torch.tensor([0.9189385]))


def test_teacher_forced_world_model_loss_uses_true_one_step_deltas():
    """With teacher forcing, every predicted step starts from the true state: the loss's MSE equals the one-step
    MSE of a single teacher-forced pass, averaged over the history part (H - 1 steps) and the forecast part (F)."""
    torch.manual_seed(0)
    schema = WamSchema(state_keys={"obs/world_model/x": [3]}, instruction_keys={}, action_shape=[2])
    model = WorldModel(schema, model_cfg("gru", trunk=TrunkCfg(kind="gru", hidden=16, layers=1), head_hidden=16))
    model.normalizers.delta.std.fill_(0.5)
    history, span = 3, 7
    generator = torch.Generator().manual_seed(1)
    states, actions = torch.randn(4, span, 3, generator=generator), torch.randn(4, span, 2, generator=generator)
    empty = torch.zeros(4, span, 0)
    batch = Sequences(states, empty, actions, torch.zeros(4, span), torch.zeros(4, span), empty)
    with torch.no_grad():
        _, terms = world_model_loss(model, batch, history, LossCfg(teacher_forcing=True))
        _, prediction, _ = model.teacher_forced(states[:, :-1], empty[:, :-1], actions[:, :-1])
    squared = (prediction.delta_mean - (states[:, 1:] - states[:, :-1]) / 0.5).square()
    expected = (squared[:, : history - 1].mean() + squared[:, history - 1 :].mean()) / 2
    torch.testing.assert_close(terms["dynamics_mse"], expected)
