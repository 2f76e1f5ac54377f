"""Fixed-length windows of consecutive steps for world-model training, read lazily from the HDF5 shards.

A window starting at step ``s`` of an episode covers steps ``s .. s + H + F - 1`` and never crosses an episode
boundary: ``H`` history steps ``s .. s + H - 1`` and ``F`` future steps ``s + H .. s + H + F - 1``. Step ``t`` of an
episode holds the observation/state at ``t``, the action taken at ``t`` and what that action caused (reward, done,
labels), so ``history/actions`` ends with the action that leads to the first future step, and
``future/actions`` holds the actions of the future steps (the inputs of an autoregressive rollout and the targets
of an action head).

An episode of ``T`` steps gives ``max(0, (T - H - F) // stride + 1)`` windows (``T - H - F + 1`` with stride 1).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import torch
from torch.utils.data import Dataset

from .errors import ManifestError
from .manifest import load_manifest
from .reader import episode_table
from .shards import demo_name


class WindowDataset(Dataset):
    """Windows of history ``H`` and forecast ``F`` steps over chosen episodes of a dataset.

    Items are dicts of tensors:

    - ``history/<key>``: shape (H, *spec.shape), for each of ``history_keys``;
    - ``future/<key>``: shape (F, *spec.shape), for each of ``future_keys`` (none when F is 0);
    - ``episode``, ``start``: int64 scalars, the episode id and the window's first step.

    Shuffle with the DataLoader (``shuffle=True, generator=torch.Generator().manual_seed(seed)``) or any sampler;
    the dataset is map-style and deterministic. Shard files are opened lazily, once per process (DataLoader workers
    each open their own handles), and only the rows of a window are read.

    Args:
        dataset_dir: the dataset directory.
        history: history length H [steps], >= 1.
        forecast: forecast length F [steps], >= 0.
        history_keys: per-step keys of the history; default every ``obs/``, ``states/`` key and ``actions``.
        future_keys: per-step keys of the future; default every ``states/``, ``labels/`` key and ``actions``.
        episode_ids: episodes to draw windows from (e.g. one side of :func:`~wam_isaac.data.reader.
            split_by_episode`); default all.
        stride: steps between the starts of consecutive windows of an episode, >= 1.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        history: int,
        forecast: int,
        history_keys: Sequence[str] | None = None,
        future_keys: Sequence[str] | None = None,
        episode_ids: Sequence[int] | None = None,
        stride: int = 1,
    ) -> None:
        if history < 1 or forecast < 0 or stride < 1:
            raise ValueError(f"need history >= 1, forecast >= 0, stride >= 1; got {history}, {forecast}, {stride}")
        self.dataset_dir = Path(dataset_dir)
        self.manifest = load_manifest(self.dataset_dir)
        self.history, self.forecast, self.stride = history, forecast, stride
        keys = self.manifest["keys"]
        groups = {key: entry["group"] for key, entry in keys.items()}
        if history_keys is None:
            history_keys = [key for key, group in groups.items() if group in ("obs", "states", "actions")]
        if future_keys is None:
            future_keys = [key for key, group in groups.items() if group in ("states", "labels", "actions")]
        self.history_keys = list(history_keys)
        self.future_keys = list(future_keys) if forecast > 0 else []
        unknown = sorted(set(self.history_keys + self.future_keys) - keys.keys())
        if unknown:
            raise ManifestError(f"keys {unknown} are not in {self.dataset_dir} (it has {sorted(keys)})")

        table = episode_table(self.manifest)
        ids = sorted(table) if episode_ids is None else [int(i) for i in episode_ids]
        missing = sorted(set(ids) - table.keys())
        if missing:
            raise ManifestError(f"episodes {missing[:8]} are not in {self.dataset_dir} ({len(table)} episodes)")
        self._records = [table[i] for i in ids]
        counts = np.array([self.windows_in(record.num_samples) for record in self._records], dtype=np.int64)
        # window index -> episode: the first episode whose cumulative count exceeds the index
        self._cumulative = np.cumsum(counts)
        self._files: dict[str, h5py.File] = {}
        self._files_pid = os.getpid()

    def windows_in(self, num_samples: int) -> int:
        """Number of windows an episode of ``num_samples`` steps gives."""
        span = self.history + self.forecast
        return max(0, (num_samples - span) // self.stride + 1) if num_samples >= span else 0

    def __len__(self) -> int:
        return int(self._cumulative[-1]) if len(self._cumulative) else 0

    def locate(self, index: int) -> tuple[int, int]:
        """``(episode id, first step)`` of window ``index``."""
        position, start = self._locate(index)
        return self._records[position].episode_id, start

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        position, start = self._locate(index)
        record = self._records[position]
        episode_id = record.episode_id
        demo = self._file(record.shard)["data"][demo_name(episode_id)]
        split = start + self.history
        item: dict[str, torch.Tensor] = {}
        for key in dict.fromkeys(self.history_keys + self.future_keys):
            in_history, in_future = key in self.history_keys, key in self.future_keys
            # one read per key, of only the rows the window needs
            first = start if in_history else split
            rows = demo[key][first : (split + self.forecast if in_future else split)]
            if in_history:
                item[f"history/{key}"] = torch.from_numpy(rows[: split - first])
            if in_future:
                item[f"future/{key}"] = torch.from_numpy(rows[split - first :])
        item["episode"] = torch.tensor(episode_id, dtype=torch.long)
        item["start"] = torch.tensor(start, dtype=torch.long)
        return item

    def _locate(self, index: int) -> tuple[int, int]:
        """Position in the episode list and first step of window ``index``."""
        if not 0 <= index < len(self):
            raise IndexError(f"window {index} out of range [0, {len(self)})")
        position = int(np.searchsorted(self._cumulative, index, side="right"))
        before = int(self._cumulative[position - 1]) if position else 0
        return position, (index - before) * self.stride

    def close(self) -> None:
        """Close the shard files this process opened."""
        for file in self._files.values():
            file.close()
        self._files.clear()

    def _file(self, shard: str) -> h5py.File:
        if self._files_pid != os.getpid():
            # a forked DataLoader worker: HDF5 handles must not be shared across processes
            self._files, self._files_pid = {}, os.getpid()
        if shard not in self._files:
            self._files[shard] = h5py.File(self.dataset_dir / shard, "r")
        return self._files[shard]

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_files"] = {}
        return state
