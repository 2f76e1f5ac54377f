"""A dataset directory's life outside the writing itself: created empty, checked, continued by a resumed run.

A run of ``wam generate`` is a *segment* of its dataset: :func:`begin_segment` writes the dataset's manifest before the
simulation starts (a new dataset's, without keys or shards yet, so that a run killed before its first shard leaves a
dataset ``wam inspect --verify`` accepts) or checks the existing one (same task and env-config hash, else
:class:`~wam_isaac.data.errors.ManifestError` and nothing changed), and records the segment and its seed.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .errors import DatasetExistsError, DatasetNotWritableError, ManifestError
from .manifest import (
    FORMAT,
    MANIFEST_NAME,
    SCHEMA_VERSION,
    is_dataset_file,
    load_manifest,
    package_versions,
    write_json_atomic,
)


def begin_segment(
    out_dir: str | os.PathLike,
    task_id: str,
    env_config_hash: str,
    env_args: Mapping[str, Any],
    seed: int,
    resume: bool = False,
    overwrite: bool = False,
) -> tuple[int, dict[str, Any]]:
    """Start a run's segment of a dataset before the simulation starts: a new dataset's manifest (no keys nor shards
    yet: a run killed from here on leaves a dataset that ``wam inspect --verify`` accepts), or, with ``resume``, the
    existing dataset checked (same task and env-config hash) and its next segment recorded. A directory without a
    manifest is resumed as a new dataset.

    Seeds: segment ``k`` of a dataset runs with seed ``seed_0 + k`` (``seed_0``: the first run's seed), so a resumed
    run never replays a seed. Returns ``(this segment's seed, the manifest as written)``.

    Raises:
        DatasetExistsError, DatasetNotWritableError: see :func:`check_out_dir` (new datasets).
        ManifestError: ``resume`` and the dataset was generated from another task or env config; nothing changed.
    """
    out_dir = Path(out_dir)
    if resume and (out_dir / MANIFEST_NAME).exists():
        manifest = load_manifest(out_dir)
        check_same_dataset(manifest, task_id, env_config_hash, out_dir)
        segments = manifest["segments"]
        seed = segments[0]["seed"] + len(segments) if segments else seed
    else:
        check_out_dir(out_dir, overwrite or resume)
        (out_dir / MANIFEST_NAME).unlink(missing_ok=True)
        delete_unlisted_files(out_dir, {"shards": []})
        manifest = new_manifest(task_id, env_config_hash, env_args)
    first_episode = max((max(s["episode_ids"]) for s in manifest["shards"]), default=-1) + 1
    manifest["segments"] = [
        *manifest["segments"],
        {"seed": seed, "first_episode": first_episode, "started_at": utc_now()},
    ]
    manifest["complete"] = False
    write_json_atomic(out_dir / MANIFEST_NAME, manifest)
    return seed, manifest


def new_manifest(task_id: str, env_config_hash: str, env_args: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest of a dataset without keys, episodes or shards yet."""
    created = utc_now()
    return {
        "schema_version": SCHEMA_VERSION,
        "format": FORMAT,
        "task_id": task_id,
        "env_config_hash": env_config_hash,
        "env_args": dict(env_args),
        "complete": False,
        "compression": None,
        "compression_level": None,
        "keys": {},
        "dr_keys": {},
        "attr_keys": [],
        "final_keys": [],
        "segments": [],
        "shards": [],
        "totals": {"episodes": 0, "transitions": 0, "successes": 0, "dropped_episodes": 0},
        "created_with": package_versions(),
        "created_at": created,
        "updated_at": created,
    }


def check_same_dataset(manifest: Mapping[str, Any], task_id: str, env_config_hash: str, out_dir: Path) -> None:
    """Raise :class:`ManifestError` unless the dataset was generated from ``task_id`` with ``env_config_hash``."""
    if manifest["task_id"] != task_id:
        raise ManifestError(
            f"{out_dir} holds task {manifest['task_id']}, not {task_id}: resume with --task {manifest['task_id']}"
        )
    if manifest["env_config_hash"] != env_config_hash:
        raise ManifestError(
            f"{out_dir} was generated with another env config (hash {manifest['env_config_hash'][:12]}, this run's is "
            f"{env_config_hash[:12]}): resume with the same --num_envs, --seed and overrides"
        )


def delete_unlisted_files(out_dir: Path, manifest: Mapping[str, Any]) -> None:
    """Delete the shard and temporary files of ``out_dir`` that ``manifest`` does not list (left by a crash)."""
    listed = {shard["name"] for shard in manifest["shards"]} | {MANIFEST_NAME}
    for path in out_dir.iterdir():
        if is_dataset_file(path.name) and path.name not in listed:
            path.unlink()


def check_out_dir(out_dir: str | os.PathLike, overwrite: bool) -> None:
    """Refuse a non-empty directory without ``overwrite``; prove the directory writable (creating it if missing).
    Deletes nothing.

    Raises:
        DatasetExistsError: ``out_dir`` is not empty and ``overwrite`` is False.
        DatasetNotWritableError: ``out_dir`` is not a directory, or cannot be created or written to.
    """
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise DatasetNotWritableError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise DatasetExistsError(f"{out_dir} is not empty: pass --overwrite to replace the dataset in it")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out_dir):
            pass
    except OSError as error:
        raise DatasetNotWritableError(f"cannot write to {out_dir}: {error.strerror or error}") from error


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
