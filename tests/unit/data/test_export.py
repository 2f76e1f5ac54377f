"""The robomimic export read back by robomimic's SequenceDataset and Isaac Lab's HDF5DatasetFileHandler: every value
equal to what was written, quaternions (xyzw) included, next_obs ending with the stored final state."""

from __future__ import annotations

import numpy as np
import pytest
from synthetic_episodes import KEY_SPECS, make_episode

from wam_isaac.data import DatasetWriter, KeySpec, export_robomimic
from wam_isaac.data.export import robomimic_name

QUAT_KEY = "states/cube/root_pose"
TERM_KEY = "obs/world_model/cube_pos"


def quaternion_episode(episode_id: int, length: int):
    """A synthetic episode plus a root pose whose quaternion is a random unit xyzw (not symmetric in any order)."""
    episode = make_episode(episode_id, length)
    rng = np.random.default_rng(episode_id)
    quat = rng.standard_normal((length, 4))
    quat /= np.linalg.norm(quat, axis=1, keepdims=True)
    episode.data[QUAT_KEY] = np.concatenate([rng.standard_normal((length, 3)), quat], axis=1).astype(np.float32)
    episode.data[TERM_KEY] = rng.standard_normal((length, 3)).astype(np.float32)
    episode.final[TERM_KEY] = rng.standard_normal(3).astype(np.float32)
    return episode


@pytest.fixture
def exported(tmp_path):
    specs = {**KEY_SPECS, QUAT_KEY: KeySpec((7,), "float32", "m|1 (xyzw)"), TERM_KEY: KeySpec((3,), "float32", "m")}
    episodes = [quaternion_episode(i, length) for i, length in enumerate([4, 1, 6, 3, 5])]
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", specs, episodes_per_shard=2) as writer:
        writer.write_many(episodes)
    assert export_robomimic(tmp_path / "d", tmp_path / "export.hdf5") == 5
    return tmp_path / "export.hdf5", episodes


def test_isaac_lab_reads_every_value_and_quaternion_unchanged(exported):
    from isaaclab.utils.datasets import HDF5DatasetFileHandler

    path, episodes = exported
    handler = HDF5DatasetFileHandler()
    handler.open(str(path), "r")
    try:
        assert not handler.is_legacy_quaternion_format() and handler.get_env_name() == "WAM-Test"
        assert sorted(handler.get_episode_names(), key=lambda name: int(name[5:])) == [f"demo_{i}" for i in range(5)]
        for episode_id, expected in enumerate(episodes):
            loaded = handler.load_episode(f"demo_{episode_id}", "cpu")
            assert bool(loaded.success) == expected.success and int(loaded.seed) == expected.seed
            for key, values in expected.data.items():
                node = loaded.data
                for part in robomimic_name(key).split("/"):
                    node = node[part]
                np.testing.assert_array_equal(node.numpy(), values, err_msg=key)
            np.testing.assert_array_equal(loaded.data["next_obs"]["policy"].numpy()[-1], expected.final["obs/policy"])
    finally:
        handler.close()


def test_robomimic_sequence_dataset_reads_every_value_unchanged(exported):
    import robomimic.utils.obs_utils as obs_utils
    from robomimic.utils.dataset import SequenceDataset

    path, episodes = exported
    obs_keys = ["policy", "world_model.cube_pos"]
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": obs_keys}})
    dataset = SequenceDataset(
        str(path), obs_keys=obs_keys, dataset_keys=["actions", "rewards", "dones"], seq_length=1,
        hdf5_cache_mode=None, hdf5_use_swmr=False, load_next_obs=True,
    )  # fmt: skip
    assert len(dataset) == sum(e.num_samples for e in episodes) and dataset.n_demos == 5
    items = [dataset[i] for i in range(len(dataset))]  # demos in id order, steps in order
    for name, key in (("actions", "actions"), ("rewards", "rewards"), ("dones", "dones")):
        expected = np.concatenate([e.data[key] for e in episodes]).astype(np.float32)
        np.testing.assert_array_equal(np.stack([item[name][0] for item in items]), expected, err_msg=name)
    obs = np.concatenate([e.data["obs/policy"] for e in episodes])
    next_obs = np.concatenate(
        [np.concatenate([e.data["obs/policy"][1:], e.final["obs/policy"][None]]) for e in episodes]
    )
    np.testing.assert_array_equal(np.stack([item["obs"]["policy"][0] for item in items]), obs)
    np.testing.assert_array_equal(np.stack([item["next_obs"]["policy"][0] for item in items]), next_obs)
    np.testing.assert_array_equal(dataset.get_dataset_for_ep("demo_2", QUAT_KEY), episodes[2].data[QUAT_KEY])
