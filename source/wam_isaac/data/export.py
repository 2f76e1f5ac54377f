"""Export a dataset to the robomimic / Isaac Lab HDF5 layout (one group per episode), which their readers read as is.

Layout of the exported file::

    /                       attrs: format_version = 1 (Isaac Lab 3.0: quaternions are xyzw, not legacy wxyz)
    data/                   attrs: total (transitions), env_args (JSON: robomimic's env_name, type, env_kwargs)
      demo_<episode id>/    attrs: num_samples, seed, success, env_id, the episode's extra attributes, and its DR
                                   parameters as dr/<asset>/<parameter>
        obs/<group>[.<term>]        (T, ...) every obs/ key, named below obs/ with its term after a dot (robomimic
                                    keeps only the first path component of an obs key: obs/world_model/joint_pos
                                    becomes obs/world_model.joint_pos; these names are robomimic's obs_keys)
        next_obs/<group>[.<term>]   (T, ...) obs[1:] then the final state's (for the obs keys the final state holds)
        actions, rewards, dones     (T, ...)
        states/..., labels/...      (T, ...)

Values and dtypes are the dataset's, unchanged (robomimic casts what it loads to float32 itself). The episodes are
read one shard at a time, so a dataset larger than memory exports too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from .manifest import load_manifest, shard_episode_ids
from .shards import FORMAT_VERSION, read_shard_episodes


def robomimic_name(key: str) -> str:
    """A dataset key's path in the export: ``obs/<group>/<term>`` -> ``obs/<group>.<term>``, others unchanged."""
    return "obs/" + key[4:].replace("/", ".") if key.startswith("obs/") else key


def export_robomimic(
    dataset_dir: str | os.PathLike, out_file: str | os.PathLike, episode_ids: Sequence[int] | None = None
) -> int:
    """Write the episodes ``episode_ids`` (default all) of a dataset to ``out_file`` (replaced atomically) in the
    robomimic layout; returns the number of episodes written.

    Raises:
        ManifestError: ``dataset_dir`` is not a dataset.
    """
    dataset_dir, out_file = Path(dataset_dir), Path(out_file)
    manifest = load_manifest(dataset_dir)
    wanted = None if episode_ids is None else {int(i) for i in episode_ids}
    temp = out_file.with_name(f".{out_file.name}.tmp")
    count = total = 0
    with h5py.File(temp, "w") as file:
        file.attrs["format_version"] = FORMAT_VERSION
        data = file.create_group("data")
        for shard in manifest["shards"]:
            ids = shard_episode_ids(shard)
            rows = [row for row, i in enumerate(ids) if wanted is None or i in wanted]
            if not rows:
                continue
            with h5py.File(dataset_dir / shard["name"], "r") as source:
                episodes = read_shard_episodes(source, list(manifest["keys"]), rows)
            for row, episode in zip(rows, episodes, strict=True):
                demo = data.create_group(f"demo_{ids[row]}")
                demo.attrs.update(num_samples=episode.num_samples, seed=episode.seed, success=episode.success)
                demo.attrs.update(env_id=episode.env_id, **episode.attrs)
                demo.attrs.update({f"dr/{name}": value for name, value in episode.dr.items()})
                for key, values in episode.data.items():
                    name = robomimic_name(key)
                    demo.create_dataset(name, data=values, compression="gzip", compression_opts=1)
                    if key.startswith("obs/") and key in episode.final:
                        successors = np.concatenate([values[1:], np.asarray(episode.final[key])[None]])
                        demo.create_dataset(f"next_{name}", data=successors, compression="gzip", compression_opts=1)
                count += 1
                total += episode.num_samples
        data.attrs["total"] = total
        data.attrs["env_args"] = json.dumps(manifest["env_args"])
    os.replace(temp, out_file)
    return count
