"""Training windows held in memory as contiguous tensors, gathered by index arithmetic.

:class:`~wam_isaac.data.windows.WindowDataset` reads a window from HDF5 per item (right for datasets larger than
memory, slow per item in Python); the world-model trainer's datasets fit in memory, so :class:`SequenceTable`
loads the keys a model needs once (episodes concatenated) and builds a batch of windows with one gather per key.
Windows never cross an episode boundary.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

import h5py
import numpy as np
import torch

from ..data.manifest import load_manifest
from ..data.reader import episode_table
from ..data.shards import demo_name
from ..models.schema import ACTION_KEY, REWARD_KEY, TERMINATION_KEY, WamSchema


@dataclass
class Sequences:
    """A batch of windows in physical units; T = history + forecast."""

    states: torch.Tensor
    """Predicted-state vector, (B, T, S)."""
    instruction: torch.Tensor
    """Instruction vector, (B, T, I) (I may be 0)."""
    actions: torch.Tensor
    """Actions, (B, T, A)."""
    rewards: torch.Tensor
    """Rewards, (B, T)."""
    terminated: torch.Tensor
    """1 where the episode terminated at that step, (B, T)."""
    contacts: torch.Tensor
    """Contact flags, (B, T, C) (C may be 0)."""

    def to(self, device: torch.device | str) -> Sequences:
        return Sequences(**{f.name: getattr(self, f.name).to(device) for f in fields(self)})

    @property
    def batch_size(self) -> int:
        return self.states.shape[0]


class SequenceTable:
    """Every step of the chosen episodes of a dataset, for the keys of ``schema``, in memory.

    Args:
        dataset_dir: the dataset.
        schema: the model's schema (which keys to load and how to concatenate them).
        episode_ids: episodes to load (e.g. one side of ``split_by_episode``); default all.
    """

    def __init__(self, dataset_dir: str | os.PathLike, schema: WamSchema, episode_ids: Sequence[int] | None = None):
        self.schema = schema
        table = episode_table(load_manifest(dataset_dir))
        ids = sorted(table) if episode_ids is None else sorted(int(i) for i in episode_ids)
        columns: dict[str, list[np.ndarray]] = {key: [] for key in schema.dataset_keys()}
        lengths = []
        by_shard: dict[str, list[int]] = {}
        for episode_id in ids:
            by_shard.setdefault(table[episode_id].shard, []).append(episode_id)
        for shard, shard_ids in by_shard.items():
            with h5py.File(Path(dataset_dir) / shard, "r") as file:
                for episode_id in shard_ids:
                    demo = file["data"][demo_name(episode_id)]
                    for key in columns:
                        columns[key].append(np.asarray(demo[key], dtype=np.float32))
                    lengths.append(table[episode_id].num_samples)
        self.episode_ids = [i for ids_ in by_shard.values() for i in ids_]
        self.lengths = np.asarray(lengths, dtype=np.int64)
        """Steps of each loaded episode, in load order."""
        self.offsets = np.concatenate(([0], np.cumsum(self.lengths)[:-1])).astype(np.int64)
        """Row of each episode's first step."""
        rows = int(self.lengths.sum())

        def flat(keys: Sequence[str]) -> torch.Tensor:
            if not keys:
                return torch.zeros(rows, 0)
            return torch.from_numpy(np.concatenate([np.concatenate(columns[k]).reshape(rows, -1) for k in keys], 1))

        self.states = flat(list(schema.state_keys))
        self.instruction = flat(list(schema.instruction_keys))
        self.actions = flat([ACTION_KEY])
        self.rewards = flat([REWARD_KEY])[:, 0]
        self.terminated = flat([TERMINATION_KEY])[:, 0] if schema.has_termination else torch.zeros(rows)
        self.contacts = flat(list(schema.contact_keys))

    def __len__(self) -> int:
        return int(self.lengths.sum())

    def window_starts(self, span: int, stride: int = 1) -> torch.Tensor:
        """Rows where a window of ``span`` steps starts without crossing an episode's end, (N,) int64."""
        starts = [
            offset + np.arange(0, length - span + 1, stride)
            for offset, length in zip(self.offsets, self.lengths, strict=False)
            if length >= span
        ]
        return torch.from_numpy(np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64))

    def gather(self, starts: torch.Tensor, span: int) -> Sequences:
        """The windows of ``span`` steps beginning at rows ``starts`` (B,)."""
        rows = starts[:, None] + torch.arange(span)
        return Sequences(
            self.states[rows],
            self.instruction[rows],
            self.actions[rows],
            self.rewards[rows],
            self.terminated[rows],
            self.contacts[rows],
        )

    def batches(
        self,
        span: int,
        batch_size: int,
        generator: torch.Generator | None = None,
        stride: int = 1,
        drop_last: bool = True,
    ) -> Iterator[Sequences]:
        """Windows in batches: shuffled with ``generator`` if given, else in order."""
        starts = self.window_starts(span, stride)
        if generator is not None:
            starts = starts[torch.randperm(len(starts), generator=generator)]
        stop = len(starts) - (len(starts) % batch_size if drop_last else 0)
        for first in range(0, stop, batch_size):
            yield self.gather(starts[first : first + batch_size], span)

    def one_step_statistics(self) -> dict[str, torch.Tensor]:
        """Samples to fit the normalizers on: states, instructions, actions, rewards (every step), and the one-step
        state deltas within episodes."""
        within = torch.ones(len(self), dtype=torch.bool)
        within[torch.from_numpy(self.offsets + self.lengths - 1)] = False  # an episode's last step has no successor
        next_rows = torch.arange(len(self))[within] + 1
        deltas = self.states[next_rows] - self.states[within]
        return {
            "state": self.states,
            "delta": deltas,
            "instruction": self.instruction,
            "action": self.actions,
            "reward": self.rewards[:, None],
        }
