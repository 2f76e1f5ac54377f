"""The predicted-vs-true strip: a column per horizon, rows true / predicted / copy-last, white gaps."""

from __future__ import annotations

import numpy as np
import torch

from wam_isaac.evaluation.visual_strip import frame_strip, save_strip


def test_strip_places_each_frame_in_its_row_and_column(tmp_path):
    true = torch.arange(4, dtype=torch.uint8)[:, None, None, None].expand(4, 8, 6, 3) * 10  # step f: value 10 f
    predicted = true + 1
    last = torch.full((8, 6, 3), 200, dtype=torch.uint8)
    strip = frame_strip(true, predicted, last, horizons=(1, 4), gap=2)
    assert strip.shape == (3 * 8 + 2 * 2, 2 * 6 + 2, 3) and strip.dtype == np.uint8
    cell = lambda row, column: strip[row * 10 : row * 10 + 8, column * 8 : column * 8 + 6]  # noqa: E731
    assert (cell(0, 0) == 0).all() and (cell(0, 1) == 30).all()  # true at horizons 1 and 4
    assert (cell(1, 0) == 1).all() and (cell(1, 1) == 31).all()  # predicted
    assert (cell(2, 0) == 200).all() and (cell(2, 1) == 200).all()  # copy-last
    assert (strip[8:10] == 255).all() and (strip[:, 6:8] == 255).all()
    save_strip(tmp_path / "s.png", strip, scale=2)
    import matplotlib.image

    assert matplotlib.image.imread(tmp_path / "s.png").shape[:2] == (2 * strip.shape[0], 2 * strip.shape[1])
