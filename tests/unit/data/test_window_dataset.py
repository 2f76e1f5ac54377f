"""WindowDataset: windows stay inside one episode, their number, keys and shapes, episode selection, shuffling."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from wam_isaac.data.errors import ManifestError
from wam_isaac.data.windows import WindowDataset

LENGTHS = [7, 3, 5, 10, 1]


def test_windows_are_contiguous_within_one_episode_and_all_present(dataset):
    out_dir, _ = dataset
    history, forecast = 2, 3
    windows = WindowDataset(out_dir, history, forecast)
    # T - H - F + 1 windows per episode of T >= H + F steps: 3 + 0 + 1 + 6 + 0
    assert len(windows) == sum(max(0, length - history - forecast + 1) for length in LENGTHS) == 10
    seen = []
    for index in range(len(windows)):
        item = windows[index]
        episode, start = int(item["episode"]), int(item["start"])
        # obs, actions and states encode (episode id, step): one episode, consecutive steps
        steps = torch.cat([item["history/obs/policy"][:, :2], item["future/states/joint_pos"].float()])
        assert (steps[:, 0] == episode).all()
        assert steps[:, 1].tolist() == list(range(start, start + history + forecast))
        assert item["history/actions"][:, 1].tolist() == list(range(start, start + history))
        assert item["future/actions"][:, 1].tolist() == list(range(start + history, start + history + forecast))
        assert (
            item["future/labels/contact"].shape == (forecast, 4) and item["future/labels/contact"].dtype == torch.bool
        )
        seen.append((episode, start))
    expected = [(e, s) for e, length in enumerate(LENGTHS) for s in range(max(0, length - history - forecast + 1))]
    assert seen == expected
    assert sorted(k for k in windows[0] if k.startswith("history/")) == [
        "history/actions", "history/obs/policy", "history/states/joint_pos"]  # fmt: skip
    with pytest.raises(IndexError):
        windows[len(windows)]


def test_stride_episode_selection_and_keys(dataset):
    out_dir, _ = dataset
    strided = WindowDataset(out_dir, 1, 1, stride=3)
    # (T - H - F) // stride + 1: 7 -> 2, 3 -> 1, 5 -> 2, 10 -> 3, 1 -> 0
    assert len(strided) == 8 and [strided.locate(i) for i in range(3)] == [(0, 0), (0, 3), (1, 0)]
    selected = WindowDataset(out_dir, 2, 0, history_keys=["rewards"], episode_ids=[3, 0])
    assert len(selected) == 9 + 6 and selected.locate(0) == (3, 0)
    assert set(selected[0]) == {"history/rewards", "episode", "start"}
    with pytest.raises(ManifestError, match="labels/missing"):
        WindowDataset(out_dir, 1, 1, future_keys=["labels/missing"])
    with pytest.raises(ManifestError, match="episodes \\[9\\]"):
        WindowDataset(out_dir, 1, 1, episode_ids=[9])


def test_seeded_shuffle_is_reproducible_and_covers_every_window(dataset):
    out_dir, _ = dataset
    windows = WindowDataset(out_dir, 2, 2)

    def order(seed):
        loader = DataLoader(windows, batch_size=4, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return [(int(e), int(s)) for batch in loader for e, s in zip(batch["episode"], batch["start"], strict=True)]

    assert order(0) == order(0) != order(1)
    assert sorted(order(0)) == [windows.locate(i) for i in range(len(windows))]
    assert np.all(np.diff([windows.locate(i)[0] for i in range(len(windows))]) >= 0)
