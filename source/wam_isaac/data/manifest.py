"""The dataset manifest (``manifest.json``) and the file names and atomic file operations around it.

A dataset directory holds ``manifest.json`` and complete shards ``shard_00000.h5``, ``shard_00001.h5``... (layout in
:mod:`wam_isaac.data.shards`). A shard is written as ``.shard_00003.h5.tmp`` and renamed only once complete and synced;
the manifest is replaced atomically after each completed shard and lists only complete shards, in shard order.
Schema (``schema_version`` 3)::

    {
      "schema_version": 3,
      "format": "wam_isaac columnar hdf5",
      "task_id": "WAM-Push-Cube",
      "env_config_hash": "<sha256 of the env config>",
      "env_args": {...},                   # robomimic's env_args, also a root attribute of each shard
      "complete": true,                    # false while writing, and after a crash or an abort
      "compression": "gzip", "compression_level": 1,
      "keys": {"obs/policy": {"group": "obs", "shape": [24], "dtype": "float32", "unit": "mixed",
               "description": "..."}, "actions": {...}, "labels/contact_force": {...}, ...},
      "dr_keys": {"robot/body_mass": {"shape": [3], "dtype": "float32"}, ...},
      "attr_keys": ["budget_end", "episode_index"],     # per-episode extra scalars (episodes/attrs/<name>)
      "final_keys": ["states/robot/root_pose", ...],    # keys of the final state s_T (final/<key>)
      "segments": [{"seed": 0, "first_episode": 0, "started_at": "..."}, ...],   # one per run (see resume)
      "shards": [{"name": "shard_00000.h5", "sha256": "...", "episodes": 100, "transitions": 25000,
                  "successes": 61, "episode_ids": [0, 1, ...], "episode_lengths": [250, ...],
                  "env_ids": [0, 1, ...]}, ...],
      "totals": {"episodes": 100, "transitions": 25000, "successes": 61, "dropped_episodes": 2},
      "created_with": {"wam_isaac": "0.1.0", "h5py": "3.16.0", "hdf5": "1.14.6", "numpy": "2.5.5"},
      "created_at": "2025-01-01T00:00:00+00:00", "updated_at": "..."
    }

Episode ids are global: the order in which episodes were handed to the writer, continued by each resumed run; a
shard holds consecutive ids. Datasets of schema 1 and 2 (one HDF5 group per episode) are not read by this version:
regenerate them.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

from .errors import ManifestError

SCHEMA_VERSION = 3
"""Version of the manifest schema and of the HDF5 layout; bumped on any incompatible change (3: columnar shards)."""

FORMAT = "wam_isaac columnar hdf5"
"""The manifest's ``format``."""

MANIFEST_NAME = "manifest.json"
SHARD_NAME = re.compile(r"shard_(\d{5,})\.h5")
TEMP_SHARD_NAME = re.compile(r"\.shard_(\d{5,})\.h5\.tmp")
TEMP_MANIFEST_NAME = f".{MANIFEST_NAME}.tmp"


def shard_name(index: int) -> str:
    """File name of shard ``index``: ``shard_00003.h5``."""
    return f"shard_{index:05d}.h5"


def temp_shard_name(index: int) -> str:
    """File name of shard ``index`` while it is written: ``.shard_00003.h5.tmp``."""
    return f".{shard_name(index)}.tmp"


def shard_episode_ids(shard: Mapping[str, Any]) -> list[int]:
    """Ids of the episodes a manifest's shard entry holds, in storage order."""
    return [int(episode_id) for episode_id in shard["episode_ids"]]


def is_dataset_file(name: str) -> bool:
    """Whether a file name is one a dataset writer creates (manifest, shards, their temporary names)."""
    return name in (MANIFEST_NAME, TEMP_MANIFEST_NAME) or bool(
        SHARD_NAME.fullmatch(name) or TEMP_SHARD_NAME.fullmatch(name)
    )


def sha256_file(path: str | os.PathLike, block_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes, read in blocks of ``block_size`` bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(block_size):
            digest.update(block)
    return digest.hexdigest()


def fsync_file(path: str | os.PathLike) -> None:
    """Flush a closed file's data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: str | os.PathLike) -> None:
    """Flush a directory's entries (renames, deletions) to the disk."""
    fsync_file(path)


def prepare_json(path: Path, content: Mapping[str, Any]) -> Path:
    """Write ``content`` as JSON to ``.<name>.tmp`` beside ``path`` and sync it; :func:`os.replace` it onto ``path``
    to publish it. Returns the temporary path."""
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w") as file:
        file.write(dumps(content))
        file.flush()
        os.fsync(file.fileno())
    return temp


def dumps(content: Mapping[str, Any]) -> str:
    """``content`` as JSON with one top-level key per line and one line per element of a list of objects (the
    shards): readable, and encoded by json's C encoder (``indent`` would use its pure-Python one, whose cost, repeated
    at every shard, grows with the dataset)."""

    def value(item: Any) -> str:
        if isinstance(item, list) and item and isinstance(item[0], dict):
            return "[\n  " + ",\n  ".join(json.dumps(element, allow_nan=False) for element in item) + "\n ]"
        return json.dumps(item, allow_nan=False)

    return "{\n" + ",\n".join(f" {json.dumps(key)}: {value(item)}" for key, item in content.items()) + "\n}\n"


def write_json_atomic(path: Path, content: Mapping[str, Any]) -> None:
    """Replace ``path`` with ``content`` as JSON so that a reader sees either the old or the new file, whole."""
    os.replace(prepare_json(path, content), path)
    fsync_dir(path.parent)


def load_manifest(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a dataset directory.

    Raises:
        ManifestError: the manifest is missing, is not JSON, or has a schema version this package cannot read.
    """
    path = Path(dataset_dir) / MANIFEST_NAME
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError as error:
        raise ManifestError(f"{dataset_dir} has no {MANIFEST_NAME}: not a wam_isaac dataset") from error
    except json.JSONDecodeError as error:
        raise ManifestError(f"{path} is not valid JSON: {error}") from error
    version = manifest.get("schema_version") if isinstance(manifest, dict) else None
    if version != SCHEMA_VERSION:
        raise ManifestError(
            f"{path} has schema_version {version!r}; this package reads version {SCHEMA_VERSION} (columnar shards): "
            "regenerate the dataset with this version's wam generate"
        )
    return manifest


def config_hash(config: Mapping[str, Any]) -> str:
    """Hex sha256 of a JSON-serializable config (e.g. an Isaac Lab env cfg's ``to_dict()``), independent of key order.

    Raises:
        TypeError: the config holds a value JSON cannot encode (convert callables and classes to names first).
    """
    encoded = json.dumps(config, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(encoded.encode()).hexdigest()


def package_versions() -> dict[str, str]:
    """Versions of the packages that wrote a dataset, recorded as the manifest's ``created_with``."""
    import h5py
    import numpy as np

    return {
        "wam_isaac": metadata.version("wam_isaac"),
        "h5py": h5py.__version__,
        "hdf5": h5py.version.hdf5_version,
        "numpy": np.__version__,
    }
