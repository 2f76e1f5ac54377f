"""Datasets of simulated episodes: collect them from parallel envs, write crash-safe HDF5 shards, read windows.

- :class:`EpisodeCollector` (``collector.py``): batched per-step data of N envs -> completed :class:`Episode` s.
- :class:`DatasetWriter` (``writer.py``): episodes -> columnar ``shard_<i>.h5`` (``shards.py``) + ``manifest.json``.
- ``dataset_dir.py``: :func:`begin_segment` (a run's start: a new dataset, or a resumed one checked and its next
  seed), :func:`check_out_dir`.
- ``reader.py``: :class:`DatasetReader` (rows and windows of any episode, on demand), :func:`load_manifest`,
  :func:`verify`, :func:`unlisted_files`, :func:`read_episode`, :func:`iter_episodes`, :func:`split_by_episode`,
  :func:`split_by_env`.
- :func:`export_robomimic` (``export.py``): a dataset as one robomimic / Isaac Lab HDF5 file.
- :func:`summarize` (``summary.py``): what ``wam inspect`` prints.

Names are imported lazily, so that reading or inspecting a dataset does not import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Episode": "episode",
    "EpisodeCollector": "collector",
    "nonfinite_envs": "collector",
    "KeySpec": "specs",
    "key_specs_from_example": "specs",
    "DatasetWriter": "writer",
    "check_out_dir": "dataset_dir",
    "begin_segment": "dataset_dir",
    "DatasetError": "errors",
    "DatasetExistsError": "errors",
    "DatasetNotWritableError": "errors",
    "ManifestError": "errors",
    "WriterError": "errors",
    "SCHEMA_VERSION": "manifest",
    "config_hash": "manifest",
    "load_manifest": "manifest",
    "verify": "reader",
    "unlisted_files": "reader",
    "read_episode": "reader",
    "iter_episodes": "reader",
    "split_by_episode": "reader",
    "split_by_env": "reader",
    "EpisodeRecord": "reader",
    "episode_table": "reader",
    "DatasetReader": "reader",
    "export_robomimic": "export",
    "summarize": "summary",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)


def __dir__() -> list[str]:
    return __all__
