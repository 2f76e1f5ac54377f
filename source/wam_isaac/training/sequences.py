"""Training windows of a dataset, gathered by index arithmetic from blocks of shards held in memory.

:class:`SequenceTable` reads the keys a model needs through :class:`~wam_isaac.data.reader.DatasetReader`'s shards,
one block of consecutive shards at a time (episodes concatenated), and builds a batch of windows with one gather per
key. A dataset whose selected keys fit in ``max_resident_bytes`` is one block, loaded once; a larger one is split
into blocks of at most half that, and an LRU keeps two of them, so memory stays bounded whatever the dataset size.
Windows never cross an episode boundary (hence never a shard or a block).

Episode ends: when the dataset recorded every episode's final state ``s_T`` (the state after its last action, before
Isaac Lab's reset: ``final/obs/world_model/<term>``), each episode's rows are its ``T`` steps followed by one *final
row* holding ``s_T`` (instruction from ``final/`` too, else the last step's; action, reward and flags zero,
:attr:`Sequences.is_final` 1). A window may reach that row, so the last transition ``s_{T-1} -> s_T`` is predicted
like any other, with its ``terminated`` flag: the termination head sees its positive examples, the dynamics head the
terminal step, and a value target bootstraps ``V(s_T)`` after a time-out (a termination cuts it). A window never
starts on a final row.

Padded windows (``pad_ends=True``, the default of :meth:`SequenceTable.batches`): a window may start on any step and
run past its episode's final row, the rows after it repeating the final row (``is_final`` 1, masked out of every
loss). Without padding the last transitions of an episode are in few windows (the terminal one in one window, at its
last predicted position, deep in the autoregressive forecast); with it every transition is at every position of a
window equally often, terminal ones included. Evaluation windows (:meth:`window_starts` by default) are not padded:
k-step errors need true states ``k`` steps on. Datasets without final states keep the rows of their steps only (the
last transition is then never predicted, and nothing is padded).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from ..data.errors import ManifestError
from ..data.reader import DatasetReader
from ..models.schema import ACTION_KEY, REWARD_KEY, TERMINATION_KEY, WamSchema

MAX_RESIDENT_BYTES = 2 << 30
"""Default memory bound of a :class:`SequenceTable`'s loaded rows [bytes]."""

COLUMNS = ("states", "instruction", "actions", "rewards", "terminated", "contacts", "is_final")
"""The tensors of a block, in :class:`Sequences` order."""


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
    is_final: torch.Tensor | None = None
    """1 where the row is an episode's final state ``s_T`` (the state after its last action; its action, reward,
    flags and contacts are zero-filled, not data) or a padding copy of it after the end, 0 on recorded steps, (B, T);
    ``None``: every row is a step. No predicted transition starts on such a row; a value target bootstraps there."""
    action_before: torch.Tensor | None = None
    """The executed action taken just before each window's first row, (B, A): the previous action of that row, which
    a window cut from the middle of an episode does not hold; zeros where the window starts its episode (Isaac Lab's
    ``last_action`` after a reset). ``None``: treated as zeros (every window starts an episode)."""

    def to(self, device: torch.device | str) -> Sequences:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return Sequences(**{name: None if value is None else value.to(device) for name, value in values.items()})

    @property
    def step_mask(self) -> torch.Tensor:
        """1 on rows that are recorded steps (an action was taken there), 0 on final rows, (B, T)."""
        if self.is_final is None:
            return torch.ones_like(self.rewards)
        return 1.0 - self.is_final

    @property
    def batch_size(self) -> int:
        return self.states.shape[0]


class SequenceTable:
    """Every step of the chosen episodes of a dataset, for the keys of ``schema``, served by blocks of shards.

    Args:
        dataset_dir: the dataset.
        schema: the model's schema (which keys to load and how to concatenate them).
        episode_ids: episodes to serve (e.g. one side of ``split_by_env``); default all.
        max_resident_bytes: bound on the loaded rows [bytes] (see the module docstring).

    Raises:
        ManifestError: an episode id is not in the dataset.
    """

    def __init__(
        self,
        dataset_dir: str | os.PathLike,
        schema: WamSchema,
        episode_ids: Sequence[int] | None = None,
        *,
        max_resident_bytes: int = MAX_RESIDENT_BYTES,
        action_keys: Sequence[str] = (ACTION_KEY,),
    ):
        self.schema = schema
        self.action_keys = tuple(action_keys)
        """Dataset keys of the action column, side by side ((rows, A) each): the executed ``actions`` first, then any
        behaviour-cloning targets (:mod:`~wam_isaac.training.action_targets`); zeros on final rows."""
        self.reader = DatasetReader(dataset_dir)
        table = self.reader.episodes
        ids = sorted(table) if episode_ids is None else sorted(int(i) for i in episode_ids)
        missing = sorted(set(ids) - table.keys())
        if missing:
            raise ManifestError(f"episodes {missing[:8]} are not in {dataset_dir} ({len(table)} episodes)")
        by_shard: dict[str, list[int]] = {}
        for episode_id in ids:
            by_shard.setdefault(table[episode_id].shard, []).append(episode_id)
        self.episode_ids = [i for ids_ in by_shard.values() for i in ids_]
        self.lengths = np.asarray([table[i].num_samples for i in self.episode_ids], dtype=np.int64)
        """Steps of each episode, in load order."""
        final_keys = set(self.reader.manifest.get("final_keys", []))
        self.has_final = bool(self.episode_ids) and all(key in final_keys for key in schema.state_keys)
        """Whether every episode ends with a final row (``s_T``, see the module docstring)."""
        self.rows_per_episode = self.lengths + int(self.has_final)
        """Rows of each episode in the table: its steps, then its final row if :attr:`has_final`."""
        self.offsets = np.concatenate(([0], np.cumsum(self.rows_per_episode)[:-1])).astype(np.int64)
        """Row of each episode's first step."""
        action_width = schema.action_dim * len(self.action_keys)
        widths = [schema.state_dim, schema.instruction_dim, action_width, 1, 1, schema.contact_dim, 1]
        row_bytes = 4 * sum(widths)  # float32
        total_rows = int(self.rows_per_episode.sum())
        budget = max_resident_bytes if total_rows * row_bytes <= max_resident_bytes else max_resident_bytes // 2
        self._blocks: list[list[str]] = []
        """Consecutive shards loaded together."""
        block_starts, rows = [], 0
        for shard, shard_ids in by_shard.items():
            shard_rows = sum(table[i].num_samples + int(self.has_final) for i in shard_ids)
            if not self._blocks or (rows - block_starts[-1] + shard_rows) * row_bytes > budget:
                self._blocks.append([])
                block_starts.append(rows)
            self._blocks[-1].append(shard)
            rows += shard_rows
        self._block_starts = np.asarray(block_starts + [rows], dtype=np.int64)
        """First row of each block, then the number of rows."""
        self._by_shard = by_shard
        self._shard_sizes: dict[str, int] = {}
        self._index_rows: dict[int, int] = {}
        """Each episode's row in its shard's index (and ``final/<key>`` datasets): its rank by start row."""
        for record in sorted(table.values(), key=lambda r: (r.shard, r.start)):
            self._index_rows[record.episode_id] = self._shard_sizes.get(record.shard, 0)
            self._shard_sizes[record.shard] = self._shard_sizes.get(record.shard, 0) + 1
        self._cache: OrderedDict[int, tuple[torch.Tensor, ...]] = OrderedDict()
        self._cache_size = 1 if len(self._blocks) == 1 else 2

    @property
    def num_blocks(self) -> int:
        """Blocks of shards the table loads one at a time (1 when the whole table fits in ``max_resident_bytes``)."""
        return len(self._blocks)

    @property
    def states(self) -> torch.Tensor:
        """Predicted-state vector of every row, (N, S) (loads every block: for small datasets and tests)."""
        return self._whole(0)

    @property
    def instruction(self) -> torch.Tensor:
        """Instruction vector of every row, (N, I)."""
        return self._whole(1)

    @property
    def actions(self) -> torch.Tensor:
        """Actions of every row, (N, A)."""
        return self._whole(2)

    @property
    def rewards(self) -> torch.Tensor:
        """Rewards of every row, (N,)."""
        return self._whole(3)

    @property
    def terminated(self) -> torch.Tensor:
        """1 where the episode terminated, (N,)."""
        return self._whole(4)

    @property
    def contacts(self) -> torch.Tensor:
        """Contact flags of every row, (N, C)."""
        return self._whole(5)

    @property
    def is_final(self) -> torch.Tensor:
        """1 on the final rows (``s_T``), 0 on steps, (N,)."""
        return self._whole(6)

    def _whole(self, column: int) -> torch.Tensor:
        return torch.cat([self._block(b)[column] for b in range(len(self._blocks))])

    def _block(self, index: int) -> tuple[torch.Tensor, ...]:
        """The tensors of block ``index`` (:data:`COLUMNS` order), loaded if not in the LRU."""
        if index in self._cache:
            self._cache.move_to_end(index)
            return self._cache[index]
        keys = dict.fromkeys([*self.schema.dataset_keys(), *self.action_keys])
        columns: dict[str, list[np.ndarray]] = {key: [] for key in keys}
        for shard in self._blocks[index]:
            ids = self._by_shard[shard]
            records = [self.reader.episodes[i] for i in ids]
            whole = len(ids) == self._shard_sizes[shard]
            for key in columns:
                dataset = self.reader.column(shard, key)
                if whole:  # one read of the shard's column
                    columns[key].append(np.asarray(dataset[()], dtype=np.float32))
                else:
                    parts = [dataset[r.start : r.start + r.num_samples] for r in records]
                    columns[key].append(np.concatenate(parts).astype(np.float32, copy=False))
                if self.has_final:
                    columns[key][-1] = self._with_final_rows(shard, key, records, columns[key][-1])
        rows = int(self._block_starts[index + 1] - self._block_starts[index])

        def flat(keys: Sequence[str]) -> torch.Tensor:
            if not keys:
                return torch.zeros(rows, 0)
            return torch.from_numpy(np.concatenate([np.concatenate(columns[k]).reshape(rows, -1) for k in keys], 1))

        schema = self.schema
        block = (
            flat(list(schema.state_keys)),
            flat(list(schema.instruction_keys)),
            flat(list(self.action_keys)),
            flat([REWARD_KEY])[:, 0],
            flat([TERMINATION_KEY])[:, 0] if schema.has_termination else torch.zeros(rows),
            flat(list(schema.contact_keys)),
            self._final_flags(index, rows),
        )
        self._cache[index] = block
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return block

    def _with_final_rows(self, shard: str, key: str, records, steps: np.ndarray) -> np.ndarray:
        """``steps`` (the rows of ``records``, back to back) with each episode's final row inserted after its last
        step: ``final/<key>`` for the state (and the instruction, when recorded; else its last step's), zeros for
        actions, rewards, flags and contacts."""
        ends = np.cumsum([r.num_samples for r in records])
        if key in self.schema.state_keys or key in self.schema.instruction_keys:
            final = self.reader.final_column(shard, key)
            if final is not None:
                rows = [self._index_rows[r.episode_id] for r in records]
                values = np.asarray(final[()], dtype=np.float32)[rows]
            elif key in self.schema.state_keys:
                raise ManifestError(f"shard {shard} has no final/{key} though the manifest lists it")
            else:
                values = steps[ends - 1]
        else:
            values = np.zeros((len(records), *steps.shape[1:]), dtype=np.float32)
        return np.insert(steps, ends, values.reshape(len(records), *steps.shape[1:]), axis=0)

    def _final_flags(self, index: int, rows: int) -> torch.Tensor:
        """1 on the final rows of block ``index`` (each episode's last row), (rows,)."""
        flags = torch.zeros(rows)
        if self.has_final:
            ends = self.offsets + self.rows_per_episode - 1 - self._block_starts[index]
            flags[torch.from_numpy(ends[(ends >= 0) & (ends < rows)])] = 1.0
        return flags

    def __len__(self) -> int:
        """Number of steps (transitions) in the table, final rows not counted."""
        return int(self.lengths.sum())

    def window_starts(self, span: int, stride: int = 1, pad_ends: bool = False) -> torch.Tensor:
        """Rows where a window of ``span`` rows starts without crossing an episode's end, (N,) int64.

        A window's first ``span - 1`` rows are steps; its last may be the episode's final row (``s_T``) when the table
        has them (a window of one row is a step): an episode of ``T`` steps has ``T - span + 2`` windows of
        ``span >= 2`` rows with final rows, ``T - span + 1`` without. With ``pad_ends`` (and final rows), a window
        starts on every ``stride``-th step of every episode: :meth:`gather` repeats the final row past the end."""
        if pad_ends and self.has_final:
            pairs = zip(self.offsets, self.lengths, strict=True)
            starts = [offset + np.arange(0, length, stride) for offset, length in pairs]
            return torch.from_numpy(np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64))
        extra = int(self.has_final and span >= 2)
        starts = [
            offset + np.arange(0, length - span + 1 + extra, stride)
            for offset, length in zip(self.offsets, self.lengths, strict=False)
            if length + extra >= span
        ]
        return torch.from_numpy(np.concatenate(starts) if starts else np.zeros(0, dtype=np.int64))

    def gather(self, starts: torch.Tensor, span: int) -> Sequences:
        """The windows of ``span`` rows beginning at rows ``starts`` (B,); rows past an episode's final row repeat it
        (padded windows, see :meth:`window_starts`); :attr:`Sequences.action_before` is the executed action of the
        row before each start (zeros at an episode's first step)."""
        starts = torch.as_tensor(starts, dtype=torch.long)
        offsets = torch.arange(span)
        episode = np.searchsorted(self.offsets, starts.numpy(), side="right") - 1
        opens = torch.from_numpy(self.offsets[episode]) == starts  # (B,): the window starts its episode
        if self.has_final:  # each window's own last row: its episode's final row
            last = torch.from_numpy(self.offsets[episode] + self.rows_per_episode[episode] - 1)
            offsets = torch.minimum(offsets, (last - starts)[:, None])  # (B, span)
        if len(self._blocks) == 1:
            block = self._block(0)
            return Sequences(
                *(column[starts[:, None] + offsets] for column in block), self._before(block, starts, opens)
            )
        which = np.searchsorted(self._block_starts, starts.numpy(), side="right") - 1
        parts: list[list[torch.Tensor]] = [[] for _ in range(len(COLUMNS) + 1)]
        order = []
        for index in np.unique(which):
            positions = torch.from_numpy(np.flatnonzero(which == index))
            own = offsets[positions] if offsets.dim() == 2 else offsets
            local = starts[positions] - int(self._block_starts[index])
            block = self._block(int(index))
            for part, column in zip(parts, block, strict=False):
                part.append(column[local[:, None] + own])
            parts[-1].append(self._before(block, local, opens[positions]))
            order.append(positions)
        inverse = torch.argsort(torch.cat(order))
        return Sequences(*(torch.cat(part)[inverse] for part in parts))

    def _before(self, block: tuple[torch.Tensor, ...], rows: torch.Tensor, opens: torch.Tensor) -> torch.Tensor:
        """The executed action (the action column's first ``A`` entries) of the row before each of ``rows`` (block
        rows, (B,)), zeros where ``opens`` (the row is its episode's first step: nothing was done before it)."""
        executed = block[COLUMNS.index("actions")][:, : self.schema.action_dim]
        before = executed[(rows - 1).clamp(min=0)]
        return torch.where(opens[:, None], torch.zeros_like(before), before)

    def batches(
        self,
        span: int,
        batch_size: int,
        generator: torch.Generator | None = None,
        stride: int = 1,
        drop_last: bool = True,
        pad_ends: bool = True,
    ) -> Iterator[Sequences]:
        """Windows in batches: shuffled with ``generator`` if given, else in order. Over several blocks, the blocks
        come in a shuffled order and the windows are shuffled within each block (so a batch loads at most two).
        ``pad_ends``: padded windows (see :meth:`window_starts`; the training windows)."""
        starts = self.window_starts(span, stride, pad_ends)
        if generator is not None and len(self._blocks) == 1:
            starts = starts[torch.randperm(len(starts), generator=generator)]
        elif generator is not None:
            which = np.searchsorted(self._block_starts, starts.numpy(), side="right") - 1
            shuffled = []
            for index in torch.randperm(len(self._blocks), generator=generator).tolist():
                own = starts[torch.from_numpy(np.flatnonzero(which == index))]
                shuffled.append(own[torch.randperm(len(own), generator=generator)])
            starts = torch.cat(shuffled)
        stop = len(starts) - (len(starts) % batch_size if drop_last else 0)
        for first in range(0, stop, batch_size):
            yield self.gather(starts[first : first + batch_size], span)
