"""Synthetic episodes whose values encode (episode id, step), a helper that writes them as a dataset, and an
equality check of episodes. Imported by the tests of this directory (a unique module name, not ``conftest``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter

KEY_SPECS = {
    "obs/policy": KeySpec((3,), "float32", "mixed", "episode id, step, 0.5"),
    "actions": KeySpec((2,), "float32", "1"),
    "rewards": KeySpec((), "float32", "1"),
    "dones": KeySpec((), "bool"),
    "states/joint_pos": KeySpec((2,), "float64", "rad"),
    "labels/contact": KeySpec((4,), "bool"),
}


def make_episode(episode_id: int, length: int) -> Episode:
    """An episode whose step ``t`` holds ``episode_id`` and ``t`` in its obs, actions and states, and whose final
    state holds ``episode_id`` and its length (the step after its last)."""
    steps = np.arange(length)
    ids = np.full(length, episode_id)
    return Episode(
        data={
            "obs/policy": np.stack([ids, steps, np.full(length, 0.5)], axis=1).astype(np.float32),
            "actions": np.stack([ids, steps], axis=1).astype(np.float32),
            "rewards": (steps * 0.25).astype(np.float32),
            "dones": steps == length - 1,
            "states/joint_pos": np.stack([ids, steps], axis=1).astype(np.float64),
            "labels/contact": (steps[:, None] + np.arange(4)) % 3 == 0,
        },
        env_id=episode_id % 4,
        seed=1000 + episode_id,
        success=episode_id % 2 == 0,
        dr={
            "robot/body_mass": np.array([1.0 + episode_id, 2.0 - 0.1 * episode_id], dtype=np.float32),
            "action/joint_pos/latency": np.array(episode_id % 3, dtype=np.int64),
        },
        attrs={"timeout": episode_id % 2 == 1, "episode_index": episode_id // 4, "note": f"e{episode_id}"},
        final={
            "obs/policy": np.array([episode_id, length, 0.5], dtype=np.float32),
            "states/joint_pos": np.array([episode_id, length], dtype=np.float64),
        },
    )


def write_dataset(out_dir: Path, lengths: list[int], episodes_per_shard: int = 2, **kwargs) -> list[Episode]:
    """Write episodes of the given lengths (ids 0, 1, ...) and return them."""
    episodes = [make_episode(i, length) for i, length in enumerate(lengths)]
    with DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS, episodes_per_shard=episodes_per_shard, **kwargs) as w:
        w.write_many(episodes)
    return episodes


def assert_episodes_equal(actual: Episode, expected: Episode) -> None:
    """Every array (values and dtype) and every attribute equal."""
    assert actual.data.keys() == expected.data.keys()
    for key in expected.data:
        assert actual.data[key].dtype == expected.data[key].dtype, key
        np.testing.assert_array_equal(actual.data[key], expected.data[key], err_msg=key)
    assert actual.dr.keys() == expected.dr.keys()
    for name in expected.dr:
        assert actual.dr[name].dtype == expected.dr[name].dtype, name
        np.testing.assert_array_equal(actual.dr[name], expected.dr[name], err_msg=name)
    assert (actual.env_id, actual.seed, actual.success) == (expected.env_id, expected.seed, expected.success)
    assert actual.attrs == expected.attrs
    assert {k: type(v) for k, v in actual.attrs.items()} == {k: type(v) for k, v in expected.attrs.items()}
    assert actual.final.keys() == expected.final.keys()
    for key in expected.final:
        assert actual.final[key].dtype == expected.final[key].dtype, key
        np.testing.assert_array_equal(actual.final[key], expected.final[key], err_msg=key)
