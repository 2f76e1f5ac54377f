"""Normalizers: ``fit`` gives NumPy's mean and (population) std; constant dimensions map to finite values."""

from __future__ import annotations

import numpy as np
import torch

from wam_isaac.models import Normalizer


def test_fit_matches_numpy_mean_and_std():
    values = np.random.default_rng(0).normal([1.0, -3.0, 10.0], [0.5, 2.0, 7.0], size=(200, 3))
    normalizer = Normalizer(3).fit(torch.from_numpy(values).float())
    np.testing.assert_allclose(normalizer.mean.numpy(), values.mean(0), rtol=1e-5)
    np.testing.assert_allclose(normalizer.std.numpy(), values.std(0), rtol=1e-5)  # ddof=0
    normalized = normalizer(torch.from_numpy(values).float())
    np.testing.assert_allclose(normalized.mean(0).numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(0, unbiased=False).numpy(), 1.0, rtol=1e-5)
    torch.testing.assert_close(normalizer.inverse(normalized), torch.from_numpy(values).float(), rtol=1e-5, atol=1e-5)


def test_fit_flattens_trailing_dimensions():
    values = torch.arange(12.0).reshape(2, 3, 2)  # 6 samples of 2 dims: column 0 = 0, 2, ..., 10
    normalizer = Normalizer(2).fit(values)
    torch.testing.assert_close(normalizer.mean, torch.tensor([5.0, 6.0]))
    torch.testing.assert_close(normalizer.std, torch.full((2,), float(np.std([0, 2, 4, 6, 8, 10]))))


def test_constant_dimension_maps_to_finite_values():
    values = torch.tensor([[2.0, 1.0], [2.0, 3.0], [2.0, 5.0]])  # dimension 0 never varies
    normalizer = Normalizer(2, min_std=1e-3).fit(values)
    assert normalizer.std[0] == torch.tensor(1e-3)  # floored, not 0
    normalized = normalizer(values)
    assert torch.isfinite(normalized).all()
    torch.testing.assert_close(normalized[:, 0], torch.zeros(3))
    # a value off the constant by 0.01 maps to 0.01 / min_std = 10, finite
    torch.testing.assert_close(normalizer(torch.tensor([[2.01, 3.0]]))[0, 0], torch.tensor(10.0), rtol=1e-4, atol=0)


def test_a_normalizer_of_no_dimension_fits_nothing():
    """A task without an instruction (WAM-Cartpole) has a zero-dimensional instruction normalizer."""
    normalizer = Normalizer(0).fit(torch.zeros(7, 0))
    assert normalizer(torch.zeros(3, 0)).shape == (3, 0)


def test_grouped_dimensions_share_the_root_mean_square_of_their_stds():
    values = np.random.default_rng(0).normal(0.0, [3.0, 4.0, 0.001], size=(5000, 3))
    normalizer = Normalizer(3).fit(torch.from_numpy(values).float(), groups=[(0, 2)])
    stds = values.std(0)
    pooled = np.sqrt((stds[0] ** 2 + stds[1] ** 2) / 2)
    np.testing.assert_allclose(normalizer.std.numpy(), [pooled, pooled, stds[2]], rtol=1e-5)
