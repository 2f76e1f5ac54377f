"""Frame metrics on known images: PSNR and SSIM of constant frames equal their closed forms, uint8 (H, W, C) frames
give the library's value of the same images as float (C, H, W), and the copy-last baseline scores the last seen
frame."""

from __future__ import annotations

import math

import pytest
import torch
from torchmetrics.image import StructuralSimilarityIndexMeasure

from wam_isaac.evaluation.visual_fidelity import horizon_fidelity, psnr, ssim


def _constant(value: int, count: int = 2) -> torch.Tensor:
    return torch.full((count, 16, 16, 3), value, dtype=torch.uint8)


def test_psnr_and_ssim_of_constant_frames_equal_their_closed_forms():
    a, b = 100 / 255, 116 / 255
    assert psnr(_constant(116), _constant(100)).tolist() == pytest.approx([20 * math.log10(255 / 16)] * 2, abs=1e-4)
    # no variance: SSIM is its luminance term (2 a b + C1) / (a^2 + b^2 + C1), C1 = (0.01 * data range)^2
    c1 = 0.01**2
    expected = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.98909; the library's float32 statistics: 0.98911
    assert ssim(_constant(116), _constant(100)).tolist() == pytest.approx([expected] * 2, abs=5e-5)


def test_uint8_frames_give_the_library_value_of_the_same_images():
    generator = torch.Generator().manual_seed(0)
    true = torch.randint(0, 256, (3, 24, 20, 3), dtype=torch.uint8, generator=generator)
    noisy = (true.int() + torch.randint(-40, 41, true.shape, generator=generator)).clamp(0, 255).to(torch.uint8)
    as_float = [x.permute(0, 3, 1, 2).double() / 255 for x in (noisy, true)]
    library = StructuralSimilarityIndexMeasure(data_range=1.0)(*as_float).item()
    assert ssim(noisy, true).double().mean().item() == pytest.approx(library, abs=1e-5)
    mse = (as_float[0] - as_float[1]).square().mean(dim=(1, 2, 3))
    assert psnr(noisy, true).tolist() == pytest.approx((10 * torch.log10(1 / mse)).tolist(), abs=1e-3)


def test_horizon_fidelity_scores_each_horizon_and_the_copy_last_baseline():
    true = torch.stack([_constant(100 + 10 * f) for f in range(4)], dim=1)  # (2, 4, 16, 16, 3): brighter each step
    predicted = true.clone()
    predicted[:, 3] = _constant(100)  # right at horizons 1-3, 30 levels too dark at horizon 4
    figures = horizon_fidelity(predicted, true, last_seen=_constant(90), horizons=(1, 4))
    assert figures["1"]["psnr"] == math.inf and figures["1"]["ssim"] == pytest.approx(1.0)
    assert figures["4"]["psnr"] == pytest.approx(20 * math.log10(255 / 30), abs=1e-4)
    assert figures["1"]["copy_last_psnr"] == pytest.approx(20 * math.log10(255 / 10), abs=1e-4)
    assert figures["4"]["copy_last_psnr"] == pytest.approx(20 * math.log10(255 / 40), abs=1e-4)
    with pytest.raises(ValueError, match="horizon 5"):
        horizon_fidelity(predicted, true, _constant(90), horizons=(5,))
