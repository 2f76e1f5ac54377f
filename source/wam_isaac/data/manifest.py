"""The dataset manifest (``manifest.json``) and the file names and atomic file operations around it.

A dataset directory holds ``manifest.json`` and complete shards ``shard_00000.h5``, ``shard_00001.h5``... A shard is
written as ``.shard_00003.h5.tmp`` and renamed only once complete and synced; the manifest is replaced atomically
after each completed shard and lists only complete shards, in shard order. Schema (``schema_version`` 2)::

    {
      "schema_version": 2,
      "format": "wam_isaac.hdf5 (robomimic layout)",
      "task_id": "WAM-Push-Cube",
      "env_config_hash": "<sha256 of the env config>",
      "env_args": {...},                   # also the JSON "env_args" attribute of each shard's "data" group
      "complete": true,                    # false while writing, and after a crash or an abort
      "compression": "gzip",
      "keys": {"obs/policy": {"group": "obs", "shape": [24], "dtype": "float32", "unit": "mixed",
               "description": "..."}, "actions": {...}, "labels/contact_force": {...}, ...},
      "dr_keys": {"robot/body_mass": {"shape": [3], "dtype": "float32"}, ...},
      "shards": [{"name": "shard_00000.h5", "sha256": "...", "episodes": 100, "transitions": 25000,
                  "successes": 61, "episode_ids": [0, 2, 4, ...], "episode_lengths": [250, ...]}, ...],
      "totals": {"episodes": 100, "transitions": 25000, "successes": 61, "dropped_episodes": 2},
      "created_with": {"wam_isaac": "0.1.0", "h5py": "3.16.0", "hdf5": "1.14.6", "numpy": "2.5.5"},
      "created_at": "2025-01-01T00:00:00+00:00", "updated_at": "..."
    }

Episode ids are global (the order in which episodes were handed to the writer) and each is stored as
``data/demo_<episode id>`` in the shard whose ``episode_ids`` list it; with several writing processes, shard ``s``
is written by process ``s % num_writers``, which receives every ``num_writers``-th episode. Schema 1 (one writing
process) listed ``first_episode`` instead: the shard held ``first_episode .. first_episode + episodes - 1``;
:func:`shard_episode_ids` reads both.
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

SCHEMA_VERSION = 2
"""Version of the manifest schema and of the HDF5 layout; bumped on any incompatible change (2: shards list their
``episode_ids``; version 1 manifests are still read)."""

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
    """Ids of the episodes a manifest's shard entry holds, in storage order (schema 2 ``episode_ids``, or schema 1
    ``first_episode`` and ``episodes``)."""
    if "episode_ids" in shard:
        return [int(episode_id) for episode_id in shard["episode_ids"]]
    return list(range(shard["first_episode"], shard["first_episode"] + shard["episodes"]))


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
        json.dump(content, file, indent=1, allow_nan=False)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    return temp


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
    if not isinstance(version, int) or version > SCHEMA_VERSION:
        raise ManifestError(f"{path} has schema_version {version!r}; this package reads versions <= {SCHEMA_VERSION}")
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
