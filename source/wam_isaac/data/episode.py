"""One complete episode of one env, as it is stored: host arrays and per-episode metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Episode:
    """One complete episode of one env, on the host."""

    data: dict[str, np.ndarray]
    """Per-step arrays keyed like the dataset (``obs/policy``, ``actions``, ``rewards``, ``dones``,
    ``states/<name>``, ``labels/<name>``), each of shape (num_samples, *spec.shape)."""
    env_id: int
    """Index of the env that produced the episode."""
    seed: int
    """Seed recorded for the episode (the run's seed unless the driver derives one per episode); -1 if unknown."""
    success: bool
    """Whether the episode ended in the task's success condition."""
    dr: dict[str, np.ndarray] = field(default_factory=dict)
    """Domain-randomization parameters the episode ran with, keyed like
    :func:`wam_isaac.envs.dr.read_dr_params` (``<asset>/body_mass``...), each of that parameter's per-env shape."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """Extra per-episode scalars (bool, int, float or str), e.g. ``timeout``; stored as per-episode columns."""
    final: dict[str, np.ndarray] = field(default_factory=dict)
    """The state after the episode's last action, recorded before Isaac Lab's in-``step`` reset overwrote it:
    one row per key, keyed like :attr:`data` (``states/<asset>/<field>``, ``obs/<group>[/<term>]``), each of shape
    (*spec.shape); it is the successor of the last sample (s_T of the last transition). Empty if not recorded."""

    @property
    def num_samples(self) -> int:
        """Number of steps (transitions) in the episode."""
        return int(next(iter(self.data.values())).shape[0])
