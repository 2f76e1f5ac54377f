"""Which training episodes each rank reads, and the global batch assembled from the ranks' parts.

The training episodes (the same split on every rank: a function of the manifest and the seed) are cut into ``P``
contiguous runs of episode ids of about equal transitions, one per rank: a rank opens only the shards of its own run,
and no rank loads the whole dataset. A global batch of ``B`` windows is ``B / P`` windows of each part, so DDP's
average of the ranks' gradients is the gradient of the mean loss over the global batch: a run of ``P`` ranks and a run
of one process holding the same ``P`` parts (:class:`Parts` with every part) take the same steps.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import fields

import numpy as np
import torch

from ..training.sequences import Sequences, SequenceTable


def partition_episodes(episode_ids: Sequence[int], lengths: Sequence[int], parts: int) -> list[list[int]]:
    """Cut ``episode_ids`` (sorted) into ``parts`` contiguous runs of about equal total ``lengths``: the episode whose
    middle step falls in the ``p``-th ``1 / parts`` of all the steps goes to part ``p``.

    Raises:
        ValueError: fewer episodes than parts (a part would be empty), or ``parts < 1``.
    """
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    if len(episode_ids) < parts:
        raise ValueError(f"{len(episode_ids)} training episodes cannot be shared by {parts} ranks")
    lengths = np.asarray(lengths, dtype=np.float64)
    middles = np.cumsum(lengths) - lengths / 2
    owner = np.minimum((middles / lengths.sum() * parts).astype(np.int64), parts - 1)
    result = [[int(i) for i, o in zip(episode_ids, owner, strict=True) if o == p] for p in range(parts)]
    for p in range(parts):  # a tiny dataset of very unequal episodes: give an empty part a neighbour's episode
        if not result[p]:
            donor = max(range(parts), key=lambda q: len(result[q]))
            take = result[donor].pop(0 if donor > p else -1)
            result[p] = [take]
    return [sorted(part) for part in result]


def part_generator(seed: int, epoch: int, part: int) -> torch.Generator:
    """The shuffle generator of part ``part`` in epoch ``epoch``: a function of (seed, epoch, part) only. Part 0's is
    the one-process trainer's (:func:`~wam_isaac.training.trainer.epoch_generator`), so a run of one rank shuffles as
    before."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch + part * 7_919_000_017)


def concat(batches: Sequence[Sequences]) -> Sequences:
    """One batch of the windows of ``batches``, in order."""
    if len(batches) == 1:
        return batches[0]
    return Sequences(**{f.name: torch.cat([getattr(b, f.name) for b in batches]) for f in fields(Sequences)})


class Parts:
    """The parts of the training data this process holds (one per rank in a distributed job), served as batches.

    Args:
        tables: the parts' tables.
        indices: each part's index among all ``num_parts`` parts (rank ``r`` holds part ``r``).
        num_parts: parts in the whole job (its number of ranks).
    """

    def __init__(self, tables: Sequence[SequenceTable], indices: Sequence[int], num_parts: int) -> None:
        if len(tables) != len(indices) or not tables:
            raise ValueError("Parts needs one index per table, and at least one table")
        self.tables, self.indices, self.num_parts = list(tables), list(indices), num_parts

    def local_batch(self, batch_size: int) -> int:
        """Windows each part contributes to a global batch of ``batch_size``.

        Raises:
            ValueError: ``batch_size`` is not a multiple of the number of parts.
        """
        if batch_size % self.num_parts:
            raise ValueError(f"train.batch_size {batch_size} is not a multiple of the {self.num_parts} ranks")
        return batch_size // self.num_parts

    def steps_per_epoch(self, span: int, batch_size: int, stride: int = 1) -> int:
        """Global batches in an epoch of this process's parts: the fewest any part can fill with its training windows
        (padded at episode ends, as :meth:`SequenceTable.batches` serves them); the job's is the minimum over the
        ranks."""
        local = self.local_batch(batch_size)
        return min(len(t.window_starts(span, stride, pad_ends=True)) // local for t in self.tables)

    def batches(self, span: int, batch_size: int, seed: int, epoch: int, steps: int, stride: int = 1, skip: int = 0):
        """``steps`` global batches of epoch ``epoch`` (this process's share of each), from batch ``skip`` on."""
        local = self.local_batch(batch_size)
        streams: list[Iterator[Sequences]] = [
            table.batches(span, local, part_generator(seed, epoch, index), stride, pad_ends=True)
            for table, index in zip(self.tables, self.indices, strict=True)
        ]
        for number in range(steps):
            batch = [next(stream) for stream in streams]
            if number >= skip:
                yield concat(batch)

    def __len__(self) -> int:
        return sum(len(table) for table in self.tables)
