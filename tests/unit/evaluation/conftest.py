"""Fixtures of the evaluation tests: a synthetic Push-Cube-layout dataset and a tiny joint WAM trained on it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cube_dataset import LENGTHS, tiny_config, write_cube_dataset


@pytest.fixture(scope="session")
def cube_data(tmp_path_factory) -> Path:
    return write_cube_dataset(tmp_path_factory.mktemp("cube") / "data", LENGTHS)


@pytest.fixture(scope="session")
def joint_checkpoint(cube_data, tmp_path_factory) -> Path:
    """``checkpoints/last.pt`` of a one-epoch joint WAM on :func:`cube_data`."""
    from wam_isaac.training.run import make_trainer

    run = tmp_path_factory.mktemp("run")
    trainer = make_trainer(tiny_config(cube_data, run), log=None)
    trainer.fit()
    trainer.close()
    return run / "checkpoints" / "last.pt"
