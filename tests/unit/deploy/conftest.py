"""Fixtures of the deploy runtime's tests (the synthetic exports are built in :mod:`deploy_synthetic`)."""

from __future__ import annotations

import pytest
from deploy_synthetic import make_actor, write_synthetic_export


@pytest.fixture
def mlp_export(tmp_path):
    actor = make_actor()
    write_synthetic_export(tmp_path / "mlp", actor)
    return tmp_path / "mlp", actor
