"""Visual fidelity of predicted camera frames: PSNR and SSIM per forecast horizon, beside a copy-last-frame
baseline. The metrics are torchmetrics' (a maintained implementation: SSIM with an 11-pixel Gaussian window of
sigma 1.5, K1 0.01, K2 0.03, as in Wang et al. 2004); this module only handles frame layouts and horizons.

Frames are uint8 (..., H, W, C) as stored in datasets, or float (..., C, H, W) in [0, 1]; both are compared in
[0, 1] (data range 1).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

from ..models.pixel_world_model import to_float_frames


def psnr(predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio [dB] of each frame, shape (N,), of frames (N, ...): ``10 log10(1 / MSE)``."""
    predicted, true = to_float_frames(predicted), to_float_frames(true)
    return peak_signal_noise_ratio(predicted, true, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(predicted: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """Structural similarity [1] of each frame, shape (N,), of frames (N, ...); 1 for identical frames."""
    predicted, true = to_float_frames(predicted), to_float_frames(true)
    return structural_similarity_index_measure(predicted, true, data_range=1.0, reduction="none")


def horizon_fidelity(
    predicted: torch.Tensor, true: torch.Tensor, last_seen: torch.Tensor, horizons: Sequence[int]
) -> dict[str, dict[str, float]]:
    """PSNR and SSIM of the predictions ``horizons`` steps ahead, and of the copy-last-frame baseline.

    Args:
        predicted: predicted frames (B, F, ...), step ``f`` being ``f + 1`` steps after the last seen frame.
        true: the true frames (B, F, ...).
        last_seen: the last frame the model saw (B, ...): the baseline predicts it at every horizon.
        horizons: steps ahead, each in 1..F.

    Returns:
        ``{"<h>": {"psnr", "ssim", "copy_last_psnr", "copy_last_ssim"}}``, means over the batch [dB, 1].
    """
    figures = {}
    for horizon in horizons:
        if not 1 <= horizon <= predicted.shape[1]:
            raise ValueError(f"horizon {horizon} is outside 1..{predicted.shape[1]} (the predicted steps)")
        step = horizon - 1
        figures[str(horizon)] = {
            "psnr": psnr(predicted[:, step], true[:, step]).mean().item(),
            "ssim": ssim(predicted[:, step], true[:, step]).mean().item(),
            "copy_last_psnr": psnr(last_seen, true[:, step]).mean().item(),
            "copy_last_ssim": ssim(last_seen, true[:, step]).mean().item(),
        }
    return figures
