"""A ``wam generate`` dataset exported with ``wam export-dataset --format robomimic`` reads back, in Isaac Lab's
HDF5DatasetFileHandler and robomimic's SequenceDataset, with every value equal to what the dataset holds (root_pose
quaternions xyzw included)."""

from __future__ import annotations

import numpy as np
import pytest
from cli_in_process import wam

from wam_isaac.data import iter_episodes
from wam_isaac.data.export import robomimic_name

pytestmark = pytest.mark.integration


def test_generated_dataset_export_reads_back_exactly(tmp_path):
    out, export = tmp_path / "d", tmp_path / "export.hdf5"
    result = wam("generate", "--task", "WAM-Cartpole", "--num_envs", "3", "--steps", "40", "--policy", "random",
                 "--noise", "0.5", "--out", str(out), "--episodes_per_shard", "2")  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    result = wam("export-dataset", str(out), "--format", "robomimic", "--out", str(export))
    assert result.returncode == 0, result.stderr
    episodes = dict(iter_episodes(out))
    assert len(episodes) >= 3 and any(key.endswith("root_pose") for key in episodes[0].data)

    from isaaclab.utils.datasets import HDF5DatasetFileHandler

    handler = HDF5DatasetFileHandler()
    handler.open(str(export), "r")
    try:
        assert not handler.is_legacy_quaternion_format()
        for episode_id, expected in episodes.items():
            loaded = handler.load_episode(f"demo_{episode_id}", "cpu")
            for key, values in expected.data.items():
                node = loaded.data
                for part in robomimic_name(key).split("/"):
                    node = node[part]
                np.testing.assert_array_equal(node.numpy(), values, err_msg=f"demo_{episode_id}/{key}")
    finally:
        handler.close()

    import robomimic.utils.obs_utils as obs_utils
    from robomimic.utils.dataset import SequenceDataset

    obs_keys = [robomimic_name(key)[4:] for key in episodes[0].data if key.startswith("obs/")]
    obs_utils.initialize_obs_utils_with_obs_specs({"obs": {"low_dim": obs_keys}})
    dataset = SequenceDataset(str(export), obs_keys=obs_keys, dataset_keys=["actions", "rewards", "dones"],
                              seq_length=1, hdf5_cache_mode=None, hdf5_use_swmr=False,
                              load_next_obs=True)  # fmt: skip
    ids = sorted(episodes)
    assert len(dataset) == sum(episodes[i].num_samples for i in ids)
    items = [dataset[i] for i in range(len(dataset))]
    for key in obs_keys:
        stored = "obs/" + key.replace(".", "/")
        expected = np.concatenate([episodes[i].data[stored] for i in ids]).astype(np.float32)
        np.testing.assert_array_equal(np.stack([item["obs"][key][0] for item in items]), expected, err_msg=key)
        # next_obs: the next step's observation, and after an episode's last step its stored final observation
        following = np.concatenate([np.concatenate([episodes[i].data[stored][1:], episodes[i].final[stored][None]])
                                    for i in ids]).astype(np.float32)  # fmt: skip
        np.testing.assert_array_equal(np.stack([item["next_obs"][key][0] for item in items]), following, err_msg=key)
    for key in ("actions", "rewards", "dones"):
        expected = np.concatenate([episodes[i].data[key] for i in ids]).astype(np.float32)
        np.testing.assert_array_equal(np.stack([item[key][0] for item in items]), expected, err_msg=key)
