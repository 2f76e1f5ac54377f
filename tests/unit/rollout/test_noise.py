"""The OU exploration noise: stationary std, correlation exp(-k dt / tau), restart at episode starts, bad input."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch

from wam_isaac.rollout.noise import OUExplorationNoise, OUNoiseError, correlate, ou_coefficient
from wam_isaac.rollout.policies import ExplorationNoise


def zeros(num_envs: int, dim: int):
    return lambda obs: torch.zeros(num_envs, dim)


def run(noise: OUExplorationNoise, steps: int) -> torch.Tensor:
    return torch.stack([noise({}) for _ in range(steps)], 0)  # (T, N, A)


def test_stationary_std_and_autocorrelation():
    torch.manual_seed(0)
    std, dt, tau = 0.1, 0.04, 0.2
    noise = run(OUExplorationNoise(zeros(4000, 3), std, tau, dt), 12)
    # stationary from the first step: the std is the same at step 0 and step 11 (4000 x 3 samples each: +-1.3 %)
    assert noise[0].std().item() == pytest.approx(std, rel=0.04)
    assert noise[-1].std().item() == pytest.approx(std, rel=0.04)
    # correlation at lag k is exp(-k dt / tau): 0.819 at lag 1, 0.368 at lag 5 (white noise: 0)
    for k in (1, 5):
        corr = (noise[:-k] * noise[k:]).mean() / noise.var()
        assert corr.item() == pytest.approx(math.exp(-k * dt / tau), abs=0.02), k


def test_an_episode_start_redraws_only_that_envs_offset():
    torch.manual_seed(1)
    start = torch.tensor([False, True, False])
    noise = OUExplorationNoise(zeros(3, 2), 0.1, 1e6, 0.04, episode_start=lambda: start)  # a = 1: offsets frozen
    first = noise({})
    second = noise({})
    # tau >> dt: the running envs keep their offset (to 3e-5 of the 0.1 std); the env whose episode began drew anew
    assert torch.allclose(second[[0, 2]], first[[0, 2]], atol=1e-4)
    assert (second[1] - first[1]).abs().max() > 1e-3


def test_zero_std_returns_the_policy_action():
    action = torch.arange(6.0).reshape(2, 3)
    assert torch.equal(OUExplorationNoise(lambda obs: action, 0.0, 0.2, 0.04)({}), action)


def test_correlate_keeps_the_white_noise_std_and_policy():
    env = SimpleNamespace(step_dt=0.04, episode_length_buf=torch.tensor([3, 0]))
    white = ExplorationNoise(zeros(2, 3), 0.1)
    smooth = correlate(white, 0.2, env)
    assert smooth.policy is white.policy and smooth.std == 0.1
    assert smooth.a == pytest.approx(math.exp(-0.2))
    assert torch.equal(smooth.episode_start(), torch.tensor([False, True]))


@pytest.mark.parametrize("dt, tau", [(0.04, 0.0), (0.04, -1.0), (0.0, 0.2)])
def test_bad_time_constants_are_refused(dt, tau):
    with pytest.raises(OUNoiseError, match="time constant"):
        ou_coefficient(dt, tau)
    with pytest.raises(OUNoiseError):
        OUExplorationNoise(zeros(1, 1), 0.1, tau, dt)


def test_negative_std_is_refused():
    with pytest.raises(OUNoiseError, match=">= 0"):
        OUExplorationNoise(zeros(1, 1), -0.1, 0.2, 0.04)
