"""Fixtures of the training tests: two small datasets of a known linear system, written once per session."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from linear_system import write_linear_dataset


@pytest.fixture(scope="session")
def linear_data(tmp_path_factory) -> Path:
    """32 episodes of 40 steps, actions uniform in [-1, 1] (1,248 one-step transitions)."""
    return write_linear_dataset(tmp_path_factory.mktemp("linear") / "data", episodes=32, length=40, seed=0)


@pytest.fixture(scope="session")
def smooth_data(tmp_path_factory) -> Path:
    """4 episodes of 60 steps with sinusoidal actions (a smooth deterministic system)."""
    return write_linear_dataset(tmp_path_factory.mktemp("smooth") / "data", episodes=4, length=60, smooth=True, seed=1)


@pytest.fixture(autouse=True)
def _restore_determinism():
    """Undo ``deterministic=True`` runs' global switch afterwards."""
    yield
    if torch.are_deterministic_algorithms_enabled():  # the switch costs seconds on its first call: only if set
        torch.use_deterministic_algorithms(False)
