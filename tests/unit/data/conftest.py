"""Fixtures of the dataset tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from synthetic_episodes import write_dataset

from wam_isaac.data.episode import Episode


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[Episode]]:
    """A dataset of 5 episodes (lengths 7, 3, 5, 10, 1) in 3 shards of up to 2 episodes."""
    out_dir = tmp_path / "dataset"
    return out_dir, write_dataset(out_dir, [7, 3, 5, 10, 1])
