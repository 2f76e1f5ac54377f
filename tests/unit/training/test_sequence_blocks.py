"""SequenceTable over several blocks of shards (bounded memory) serves exactly the windows of the in-memory table,
never across an episode's end, and keeps at most two blocks loaded."""

from __future__ import annotations

import numpy as np
import torch
from linear_system import write_linear_dataset

from wam_isaac.data import load_manifest
from wam_isaac.models.schema import WamSchema
from wam_isaac.training.sequences import SequenceTable


def test_blocks_serve_the_same_windows_as_one_block(tmp_path):
    data = write_linear_dataset(tmp_path / "d", episodes=40, length=12)  # 16 episodes per shard: 3 shards
    schema = WamSchema.from_manifest(load_manifest(data))
    ids = list(range(0, 40, 3))  # a subset: partial shards are read episode by episode
    whole = SequenceTable(data, schema, ids)
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 2 + schema.contact_dim)
    blocks = SequenceTable(data, schema, ids, max_resident_bytes=12 * 7 * row_bytes)  # a shard's rows per block
    assert len(whole._blocks) == 1 and len(blocks._blocks) == 3
    np.testing.assert_array_equal(blocks.lengths, whole.lengths)
    span = 5
    starts = whole.window_starts(span)
    assert torch.equal(starts, blocks.window_starts(span))
    # every window lies inside one episode: its rows are [offset + s, offset + s + span) with s + span <= length
    episode_of = np.searchsorted(whole.offsets, starts.numpy(), side="right") - 1
    assert np.all(starts.numpy() + span <= whole.offsets[episode_of] + whole.lengths[episode_of])
    shuffled = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))]
    expected, actual = whole.gather(shuffled, span), blocks.gather(shuffled, span)  # windows from every block
    for name in ("states", "instruction", "actions", "rewards", "terminated", "contacts"):
        assert torch.equal(getattr(expected, name), getattr(actual, name)), name
    assert len(blocks._cache) <= 2
    # shuffled batches: every window exactly once, at most two blocks loaded at any time
    seen = []
    for batch in blocks.batches(span, 8, torch.Generator().manual_seed(1), drop_last=False):
        seen.append(batch.states[:, 0])
        assert len(blocks._cache) <= 2
    assert sorted(map(tuple, torch.cat(seen).tolist())) == sorted(map(tuple, whole.states[starts].tolist()))


def test_one_step_statistics_of_one_block_are_every_step_and_of_many_a_strided_sample(tmp_path):
    data = write_linear_dataset(tmp_path / "d", episodes=40, length=12)
    schema = WamSchema.from_manifest(load_manifest(data))
    whole = SequenceTable(data, schema)
    stats = whole.one_step_statistics()
    states = whole.states
    last = torch.from_numpy(whole.offsets + whole.lengths - 1)
    within = torch.ones(len(whole), dtype=torch.bool)
    within[last] = False
    assert torch.equal(stats["state"], states) and torch.equal(stats["reward"][:, 0], whole.rewards)
    rows = torch.arange(len(whole))[within]
    assert torch.equal(stats["delta"], states[rows + 1] - states[rows])  # never across an episode's end
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 2 + schema.contact_dim)
    blocks = SequenceTable(data, schema, max_resident_bytes=12 * 24 * row_bytes)
    assert len(blocks._blocks) == 3
    sampled = blocks.one_step_statistics()
    assert len(sampled["state"]) < len(whole) / 2
    assert torch.allclose(sampled["state"].mean(0), states.mean(0), atol=0.2)
    # every sampled delta is a true within-episode delta
    true_deltas = {tuple(row) for row in (states[rows + 1] - states[rows]).tolist()}
    assert all(tuple(row) in true_deltas for row in sampled["delta"].tolist())
