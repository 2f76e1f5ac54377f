"""A synthetic dataset whose episodes end both ways, written with the real :class:`~wam_isaac.data.DatasetWriter`
(no simulator), with each episode's final state ``s_T`` recorded as ``wam generate`` records it.

The system: a walker on a grid, ``x_{t+1} = x_t + STEP * a_t`` with ``a_t`` in {-1, +1} (+1 with probability 0.6),
from ``x_0`` in {-0.5, -0.25, 0, 0.25, 0.5}. The episode terminates at the step whose action takes ``x`` to
``GOAL`` (``x_t = GOAL - STEP`` and ``a_t = +1``: a function of the state and the action, with a margin of half a grid
step), and times out after ``MAX_STEPS`` steps otherwise. The reward is 1 per step (constant: value targets have a
closed form). The instruction (a constant per episode) is recorded in the final state too.

Imported by the tests of this directory (a unique module name, not ``conftest``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter

STEP = 0.25
"""Grid step of the walker [m]."""
GOAL = 1.0
"""Reaching this position terminates the episode [m]."""
MAX_STEPS = 12
"""Steps of an episode that does not terminate (a time-out)."""
REWARD = 1.0
"""Reward of every step."""

KEY_SPECS = {
    "obs/world_model/x": KeySpec((1,), "float32", "m", "the walker's position"),
    "obs/instruction/tag": KeySpec((1,), "float32", "1", "constant per episode"),
    "actions": KeySpec((1,), "float32", "1", "-1 or +1"),
    "rewards": KeySpec((), "float32", "1", "1 per step"),
    "dones": KeySpec((), "bool"),
    "labels/flags/terminated": KeySpec((), "bool"),
    "labels/flags/time_out": KeySpec((), "bool"),
}


def walker_episode(rng: np.random.Generator, env_id: int) -> Episode:
    """One episode of the walker, until it reaches :data:`GOAL` or for :data:`MAX_STEPS` steps."""
    x = [float(rng.choice([-0.5, -0.25, 0.0, 0.25, 0.5]))]
    actions = []
    while len(actions) < MAX_STEPS:
        actions.append(1.0 if rng.random() < 0.6 else -1.0)
        x.append(x[-1] + STEP * actions[-1])
        if x[-1] >= GOAL - 1e-6:
            break
    length = len(actions)
    terminated = x[-1] >= GOAL - 1e-6
    last = np.arange(length) == length - 1
    tag = np.full((1,), rng.uniform(-1.0, 1.0), dtype=np.float32)
    return Episode(
        data={
            "obs/world_model/x": np.asarray(x[:-1], dtype=np.float32)[:, None],
            "obs/instruction/tag": np.tile(tag, (length, 1)),
            "actions": np.asarray(actions, dtype=np.float32)[:, None],
            "rewards": np.full(length, REWARD, dtype=np.float32),
            "dones": last,
            "labels/flags/terminated": last & terminated,
            "labels/flags/time_out": last & (not terminated),
        },
        env_id=env_id,
        seed=0,
        success=terminated,
        attrs={"timeout": not terminated},
        final={"obs/world_model/x": np.asarray([x[-1]], dtype=np.float32), "obs/instruction/tag": tag},
    )


def write_walker_dataset(out_dir: Path, episodes: int, seed: int = 0, episodes_per_shard: int = 16) -> Path:
    """Write ``episodes`` walker episodes to ``out_dir``; returns ``out_dir``."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(out_dir, "WAM-Walker", "walker", KEY_SPECS, episodes_per_shard=episodes_per_shard) as writer:
        writer.write_many(walker_episode(rng, env_id=index % 8) for index in range(episodes))
    return out_dir
