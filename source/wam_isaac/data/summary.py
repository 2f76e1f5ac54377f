"""A dataset's summary, as ``wam inspect`` prints it: counts, success rate, keys, and the DR ranges sampled."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .manifest import load_manifest
from .reader import unlisted_files
from .specs import KEY_GROUPS


def summarize(dataset_dir: str | os.PathLike) -> dict[str, Any]:
    """A JSON-serializable summary of a dataset.

    Keys: ``dataset_dir``, ``task_id``, ``env_config_hash``, ``schema_version``, ``complete`` (False after a crash),
    ``shards``, ``episodes``, ``transitions``, ``successes``, ``success_rate`` (None without episodes),
    ``dropped_episodes``, ``episode_length`` ({min, mean, max} [steps], None without episodes), ``keys``
    ({group: {key: {shape, dtype, unit, description}}} for the groups obs, states, labels, actions, other),
    ``dr_ranges`` ({DR key: {shape, min, max}}, elementwise over episodes as nested lists, NaN values ignored, None
    where every episode's value is unknown), ``unlisted_files`` (see :func:`~wam_isaac.data.reader.unlisted_files`).

    Reads the manifest and each shard's DR parameter columns, not the per-step data.
    """
    dataset_dir = Path(dataset_dir)
    manifest = load_manifest(dataset_dir)
    totals = manifest["totals"]
    lengths = [length for shard in manifest["shards"] for length in shard["episode_lengths"]]
    keys: dict[str, dict[str, Any]] = {group: {} for group in KEY_GROUPS}
    for key, entry in manifest["keys"].items():
        keys[entry["group"]][key] = {name: entry[name] for name in ("shape", "dtype", "unit", "description")}
    return {
        "dataset_dir": str(dataset_dir),
        "task_id": manifest["task_id"],
        "env_config_hash": manifest["env_config_hash"],
        "schema_version": manifest["schema_version"],
        "complete": manifest["complete"],
        "shards": len(manifest["shards"]),
        "episodes": totals["episodes"],
        "transitions": totals["transitions"],
        "successes": totals["successes"],
        "success_rate": totals["successes"] / totals["episodes"] if totals["episodes"] else None,
        "dropped_episodes": totals["dropped_episodes"],
        "episode_length": {"min": min(lengths), "mean": float(np.mean(lengths)), "max": max(lengths)}
        if lengths
        else None,
        "keys": keys,
        "dr_ranges": dr_ranges(dataset_dir, manifest),
        "unlisted_files": unlisted_files(dataset_dir),
    }


def dr_ranges(dataset_dir: Path, manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Elementwise min and max of each DR parameter over the dataset's episodes (NaN, i.e. unknown, ignored)."""
    low: dict[str, np.ndarray] = {}
    high: dict[str, np.ndarray] = {}
    for shard in manifest["shards"]:
        with h5py.File(dataset_dir / shard["name"], "r") as file:
            for name in manifest["dr_keys"]:
                values = file["episodes/dr"][name][()].astype(np.float64)
                # fmin/fmax ignore NaN unless both sides are NaN
                shard_low, shard_high = np.fmin.reduce(values, axis=0), np.fmax.reduce(values, axis=0)
                low[name] = np.fmin(low[name], shard_low) if name in low else shard_low
                high[name] = np.fmax(high[name], shard_high) if name in high else shard_high
    return {
        name: {"shape": list(low[name].shape), "min": _json_values(low[name]), "max": _json_values(high[name])}
        for name in sorted(low)
    }


def _json_values(values: np.ndarray) -> Any:
    """Nested lists (or a scalar) of floats, None where NaN, so that the summary is strict JSON."""
    return np.where(np.isnan(values), None, values.astype(object)).tolist()
