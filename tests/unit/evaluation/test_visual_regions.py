"""Region split and oracles of :mod:`wam_isaac.evaluation.visual_regions` on drawn frames in WAM-Push-Cube-Camera's
colours: the masks are the drawn blocks, the parts of the squared error add up to the whole, and the true-arm oracle is
the true frame with the cube where it was (built here by hand)."""

from __future__ import annotations

import math

import pytest
import torch

from wam_isaac.evaluation.visual_regions import oracles, psnr_of_mean, region_split, segment

TABLE, SKY, GOAL = (159, 132, 111), (238, 238, 238), (78, 206, 111)
ARM, ARM_DARK, CUBE, CUBE_DARK = (174, 177, 184), (78, 78, 84), (78, 151, 220), (44, 91, 137)


def scene(arm_col: int, cube_col: int) -> torch.Tensor:
    """A 32x32 frame (1, 32, 32, 3): sky rows 0-5, table, the goal at (25, 28), an arm block (rows 10-13, 4 columns
    from ``arm_col``, a dark row under it) and a cube block (rows 20-22, 3 columns from ``cube_col``, a dark row)."""
    frame = torch.tensor(TABLE, dtype=torch.uint8).expand(32, 32, 3).clone()
    frame[:6] = torch.tensor(SKY, dtype=torch.uint8)
    frame[25, 28] = torch.tensor(GOAL, dtype=torch.uint8)
    frame[10:13, arm_col : arm_col + 4] = torch.tensor(ARM, dtype=torch.uint8)
    frame[13, arm_col : arm_col + 4] = torch.tensor(ARM_DARK, dtype=torch.uint8)
    frame[20:22, cube_col : cube_col + 3] = torch.tensor(CUBE, dtype=torch.uint8)
    frame[22, cube_col : cube_col + 3] = torch.tensor(CUBE_DARK, dtype=torch.uint8)
    return frame[None]


def block(rows: slice, col: int, width: int) -> torch.Tensor:
    mask = torch.zeros(1, 32, 32, dtype=torch.bool)
    mask[0, rows, col : col + width] = True
    return mask


def test_masks_are_the_drawn_blocks():
    masks = segment(scene(2, 20))
    assert torch.equal(masks["arm"], block(slice(10, 14), 2, 4))
    assert torch.equal(masks["cube"], block(slice(20, 23), 20, 3))


def test_parts_add_up_and_the_true_arm_oracle_copies_the_cube():
    last, true = scene(2, 20), scene(8, 23)
    by_hand = true.clone()  # the true arm; the cube where it was, table where it now is
    by_hand[0, 20:23, 23:26] = torch.tensor(TABLE, dtype=torch.uint8)
    by_hand[0, 20:23, 20:23] = last[0, 20:23, 20:23]
    made = oracles(true, last)
    assert torch.equal(made["true_arm"], by_hand)
    split = region_split(made["true_arm"], true, last)
    whole = {name: (a.float() / 255 - true.float() / 255).square().mean().item()
             for name, a in (("model", made["true_arm"]), ("copy_last", last))}  # fmt: skip
    for name in ("model", "copy_last"):
        assert sum(part[name] for part in split.values()) == pytest.approx(whole[name], rel=1e-5)
    assert split["arm"]["model"] == 0.0 and split["static"]["copy_last"] == 0.0
    assert split["cube"]["model"] == pytest.approx(split["cube"]["copy_last"]) and split["cube"]["model"] > 0
    assert split["arm"]["area"] == pytest.approx(2 * 16 / 1024)  # two disjoint 4x4 arm blocks
    assert psnr_of_mean(made["true_arm"], true) == pytest.approx(-10 * math.log10(whole["model"]), rel=1e-5)
    # the true-cube oracle: the arm where it was, the cube where it is
    assert torch.equal(made["true_cube"][0, 20:23], true[0, 20:23])
    assert torch.equal(made["true_cube"][0, 10:14], last[0, 10:14])
