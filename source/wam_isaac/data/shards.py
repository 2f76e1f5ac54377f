"""One episode in an HDF5 shard, laid out like robomimic / Isaac Lab Mimic datasets.

Layout of a shard::

    data/                          attrs: total (transitions in the shard), env_args (JSON), task_id,
                                          env_config_hash, schema_version, shard_index
      demo_<episode id>/           attrs: num_samples, seed, success, env_id, and the episode's extra attrs
        obs/<group>                (T, ...) per-step datasets, chunked (chunk_steps rows) and compressed
        actions, rewards, dones    (T, ...)
        states/<name>              (T, ...)
        labels/<name>              (T, ...)
        dr/<asset>/<parameter>     the episode's domain-randomization parameters, uncompressed, shape of one env

Every per-step key is a dataset at the key's path; ``dr/`` is reserved for DR parameters.
"""

from __future__ import annotations

from typing import Any

import h5py
import numpy as np

from .episode import Episode

RESERVED_ATTRS = ("num_samples", "seed", "success", "env_id")
"""Per-demo attributes every episode has; any other attribute is one of the episode's extra ``attrs``."""


def demo_name(episode_id: int) -> str:
    """Name of an episode's group under ``data``: ``demo_<episode id>``."""
    return f"demo_{episode_id}"


def write_episode(
    data: h5py.Group,
    episode_id: int,
    episode: Episode,
    compression: str | None,
    compression_level: int | None,
    chunk_steps: int,
) -> None:
    """Write ``episode`` as ``data/demo_<episode_id>`` with chunked, compressed per-step datasets."""
    demo = data.create_group(demo_name(episode_id))
    demo.attrs["num_samples"] = episode.num_samples
    demo.attrs["seed"] = np.int64(episode.seed)
    demo.attrs["success"] = bool(episode.success)
    demo.attrs["env_id"] = np.int64(episode.env_id)
    for name, value in episode.attrs.items():
        if name in RESERVED_ATTRS:
            raise ValueError(f"episode attr {name!r} is reserved (one of {RESERVED_ATTRS})")
        demo.attrs[name] = value
    for key, array in episode.data.items():
        chunked = array.size > 0
        demo.create_dataset(
            key,
            data=array,
            chunks=(min(len(array), chunk_steps), *array.shape[1:]) if chunked else None,
            compression=compression if chunked else None,
            compression_opts=compression_level if chunked else None,
            shuffle=chunked and compression is not None,
        )
    for name, value in episode.dr.items():
        demo.create_dataset(f"dr/{name}", data=value)


def read_episode(data: h5py.Group, episode_id: int) -> Episode:
    """The episode stored as ``data/demo_<episode_id>``, fully loaded."""
    demo = data[demo_name(episode_id)]
    attrs = dict(demo.attrs)
    return Episode(
        data=_datasets(demo, skip="dr"),
        env_id=int(attrs["env_id"]),
        seed=int(attrs["seed"]),
        success=bool(attrs["success"]),
        dr=_datasets(demo["dr"]) if "dr" in demo else {},
        attrs={name: _python_scalar(value) for name, value in attrs.items() if name not in RESERVED_ATTRS},
    )


def read_dr(data: h5py.Group, episode_id: int) -> dict[str, np.ndarray]:
    """The DR parameters of ``data/demo_<episode_id>`` (empty if it has none)."""
    demo = data[demo_name(episode_id)]
    return _datasets(demo["dr"]) if "dr" in demo else {}


def _datasets(group: h5py.Group, skip: str | None = None) -> dict[str, np.ndarray]:
    """Every dataset under ``group`` keyed by its path relative to it, except those under ``skip``."""
    found: dict[str, np.ndarray] = {}

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and (skip is None or name.split("/", 1)[0] != skip):
            found[name] = np.asarray(item[()])

    group.visititems(visit)
    return found


def _python_scalar(value: Any) -> Any:
    """An HDF5 attribute value as a plain Python scalar where it is a NumPy scalar."""
    return value.item() if isinstance(value, np.generic) else value
