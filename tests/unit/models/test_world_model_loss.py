"""The dynamics head's beta-NLL: the mean's gradient against closed forms, the logged plain NLL unchanged, and a shared
network that learns a hard deterministic dimension beside an easy one (the plain NLL leaves it at its variance: how the
cube's yaw stayed at the constant-velocity baseline on Push-Cube)."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.models import WamSchema, WorldModel, model_cfg
from wam_isaac.training.objectives import LossCfg, beta_nll, gaussian_nll, world_model_loss
from wam_isaac.training.sequences import Sequences


@pytest.mark.parametrize(("beta", "ratio"), [(0.0, 1.0 / 16.0), (0.5, 1.0 / 4.0), (1.0, 1.0)])
def test_the_means_gradient_is_the_error_over_sigma_to_the_2_minus_2_beta(beta, ratio):
    """Two elements off by the same 0.3, one predicted with sigma 1, one with sigma 4: the mean's gradient is
    ``(mu - x) / sigma^(2 - 2 beta)``, so their ratio is 4^(2 beta - 2); the value is the NLL times sigma^(2 beta)."""
    mean = torch.tensor([0.3, 0.3], requires_grad=True)
    log_std = torch.log(torch.tensor([1.0, 4.0]))
    target = torch.zeros(2)
    loss = beta_nll(mean, log_std, target, beta)
    loss.sum().backward()
    torch.testing.assert_close(mean.grad[0], torch.tensor(0.3))
    torch.testing.assert_close(mean.grad[1] / mean.grad[0], torch.tensor(ratio))
    torch.testing.assert_close(loss, gaussian_nll(mean, log_std, target) * torch.tensor([1.0, 16.0**beta]))


def test_the_logged_nll_is_the_plain_one_whatever_beta():
    torch.manual_seed(0)
    schema = WamSchema(state_keys={"obs/world_model/cube_pos": [3]}, action_shape=[1], has_termination=False)
    model = WorldModel(schema, model_cfg("mlp", head_hidden=8))
    batch = Sequences(
        states=torch.randn(4, 6, 3),
        instruction=torch.zeros(4, 6, 0),
        actions=torch.randn(4, 6, 1),
        rewards=torch.randn(4, 6),
        terminated=torch.zeros(4, 6),
        contacts=torch.zeros(4, 6, 0),
    )
    plain_total, plain = world_model_loss(model, batch, 3, LossCfg(dynamics_beta=0.0))
    total, terms = world_model_loss(model, batch, 3, LossCfg(dynamics_beta=0.5))
    torch.testing.assert_close(terms["dynamics_nll"], plain["dynamics_nll"])
    torch.testing.assert_close(plain["dynamics_loss"], plain["dynamics_nll"])
    assert abs(float((terms["dynamics_loss"] - terms["dynamics_nll"]).detach())) > 1e-3
    torch.testing.assert_close(total - terms["dynamics_loss"], plain_total - plain["dynamics_loss"])


def _fit_two_dims(beta: float, steps: int = 600) -> torch.Tensor:
    """RMS error of each mean after fitting one net to an easy dimension (x0, almost noise-free) and a hard one
    (sin(4 x1) cos(3 x0), deterministic) with the beta-NLL."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    x = torch.rand(2048, 2, generator=generator) * 2 - 1
    easy = x[:, 0] + 0.01 * torch.randn(2048, generator=generator)
    y = torch.stack((easy, torch.sin(4 * x[:, 1]) * torch.cos(3 * x[:, 0])), 1)
    net = torch.nn.Sequential(
        torch.nn.Linear(2, 64), torch.nn.Tanh(), torch.nn.Linear(64, 64), torch.nn.Tanh(), torch.nn.Linear(64, 4)
    )
    optimizer = torch.optim.Adam(net.parameters(), 3e-3)
    for _ in range(steps):
        batch = torch.randint(0, 2048, (128,), generator=generator)
        out = net(x[batch])
        loss = beta_nll(out[:, :2], out[:, 2:].clamp(-5, 1), y[batch], beta).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        return (net(x)[:, :2] - y).square().mean(0).sqrt(), y.square().mean(0).sqrt()


def test_the_default_beta_learns_a_hard_dimension_the_plain_nll_explains_as_noise():
    """600 Adam steps: with the plain NLL the hard dimension's mean stays near zero (its error is 0.9 of its RMS: the
    model predicted its spread instead), with the default beta it is learned (error under 0.3 of its RMS)."""
    plain, rms = _fit_two_dims(0.0)
    fixed, _ = _fit_two_dims(LossCfg().dynamics_beta)
    assert float(plain[1]) > 0.85 * float(rms[1])
    assert float(fixed[1]) < 0.3 * float(rms[1])
    assert float(fixed[0]) < 0.05 and float(plain[0]) < 0.05  # the easy dimension is learned either way
