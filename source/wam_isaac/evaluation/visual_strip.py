"""A picture of predicted vs true frames: one PNG, a column per horizon, rows true / predicted / copy-last."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ..models.pixel_world_model import to_float_frames


def frame_strip(
    true: torch.Tensor, predicted: torch.Tensor, last_seen: torch.Tensor, horizons: Sequence[int], gap: int = 2
) -> np.ndarray:
    """The strip of one window as a uint8 image (3 H + 2 gap, n W + (n - 1) gap, 3), white gaps.

    Args:
        true, predicted: the window's frames after the last seen one, (F, ...) uint8 (H, W, C) or float (C, H, W).
        last_seen: the last frame the model saw (...), shown in the copy-last row.
        horizons: the columns, steps ahead in 1..F.
    """

    def as_image(frame: torch.Tensor) -> np.ndarray:
        return (to_float_frames(frame).movedim(-3, -1).clamp(0, 1) * 255).round().to(torch.uint8).cpu().numpy()

    rows = []
    for frames in (true, predicted, last_seen[None].expand(len(true), *last_seen.shape)):
        cells = [as_image(frames[h - 1]) for h in horizons]
        blank = np.full((cells[0].shape[0], gap, 3), 255, np.uint8)
        rows.append(np.concatenate([part for cell in cells for part in (cell, blank)][:-1], axis=1))
    blank = np.full((gap, rows[0].shape[1], 3), 255, np.uint8)
    return np.concatenate([rows[0], blank, rows[1], blank, rows[2]], axis=0)


def save_strip(path: str | Path, strip: np.ndarray, scale: int = 3) -> None:
    """Write ``strip`` as a PNG, each pixel a ``scale`` x ``scale`` block (64 px frames are small on a screen)."""
    import matplotlib.image

    matplotlib.image.imsave(path, np.kron(strip, np.ones((scale, scale, 1), np.uint8)))
