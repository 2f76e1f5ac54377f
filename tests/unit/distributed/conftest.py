"""Fixtures of the distributed tests: a small dataset of a known linear system (the training tests' helper), and a
free TCP port on the loopback for each job's rendezvous."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))  # linear_system.py, shared with the training tests

from linear_system import write_linear_dataset  # noqa: E402


@pytest.fixture(scope="session")
def linear_data(tmp_path_factory) -> Path:
    """32 episodes of 40 steps of the linear system, 16 per shard (two shards)."""
    return write_linear_dataset(tmp_path_factory.mktemp("linear") / "data", episodes=32, length=40, seed=0)


@pytest.fixture
def rendezvous(monkeypatch) -> str:
    """``MASTER_ADDR`` / ``MASTER_PORT`` of a free port, inherited by the processes a test spawns."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", str(port))
    return f"127.0.0.1:{port}"
