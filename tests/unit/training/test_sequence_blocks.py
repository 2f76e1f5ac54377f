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


def test_normalizers_of_many_blocks_are_fit_on_a_strided_sample_of_steps_and_pairs(tmp_path, monkeypatch):
    """One block: every step and every within-episode pair; several blocks: every ``num_blocks``-th of each, so
    the fit never loads the whole dataset at once; a pair never spans an episode's end."""
    from wam_isaac.training import trainer

    data = write_linear_dataset(tmp_path / "d", episodes=40, length=12)
    schema = WamSchema.from_manifest(load_manifest(data))
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 2 + schema.contact_dim)
    fitted = {}

    class Recorder:
        def fit_normalizers(self, steps, pairs):
            fitted.update(steps=steps.states[:, 0], pairs=pairs.states)

    monkeypatch.setattr(trainer, "world_model_of", lambda model: Recorder())
    whole = SequenceTable(data, schema)
    trainer.fit_normalizers(None, whole)
    assert whole.num_blocks == 1 and torch.equal(fitted["steps"], whole.states)
    assert len(fitted["pairs"]) == len(whole) - len(whole.lengths)  # every pair but across an episode's end
    blocks = SequenceTable(data, schema, max_resident_bytes=12 * 24 * row_bytes)
    trainer.fit_normalizers(None, blocks)
    assert blocks.num_blocks == 3
    assert torch.equal(fitted["steps"], whole.states[whole.window_starts(1)[::3]])
    pair_starts = whole.window_starts(2)[::3]
    assert torch.equal(fitted["pairs"], torch.stack([whole.states[pair_starts], whole.states[pair_starts + 1]], 1))
    ends = set((whole.offsets + whole.lengths - 1).tolist())
    assert not ends & set(pair_starts.tolist())
