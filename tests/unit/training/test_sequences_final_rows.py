"""SequenceTable at episode ends: each episode's final state ``s_T`` follows its last step as a final row, so windows
can end on the last transition; its ``terminated`` flag is then a predicted step's target (positives exactly at the
terminal transitions, none at time-outs), and several blocks serve the same windows as one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from episode_ends import GOAL, MAX_STEPS, write_walker_dataset

from wam_isaac.data import load_manifest
from wam_isaac.data.reader import iter_episodes
from wam_isaac.models.schema import WamSchema
from wam_isaac.training.sequences import Sequences, SequenceTable


@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    return write_walker_dataset(tmp_path_factory.mktemp("walker") / "d", episodes=40)


def episodes_by_id(data) -> dict:
    return dict(iter_episodes(data))


def test_final_rows_hold_the_recorded_final_state(walker):
    schema = WamSchema.from_manifest(load_manifest(walker))
    ids = list(range(1, 40, 2))  # partial shards: read episode by episode
    table = SequenceTable(walker, schema, ids)
    episodes = episodes_by_id(walker)
    assert table.has_final
    np.testing.assert_array_equal(table.rows_per_episode, table.lengths + 1)
    for episode_id, offset, length in zip(table.episode_ids, table.offsets, table.lengths, strict=True):
        episode = episodes[episode_id]
        steps, final = slice(offset, offset + length), offset + length
        assert torch.equal(table.states[steps, 0], torch.from_numpy(episode.data["obs/world_model/x"][:, 0]))
        assert table.states[final, 0] == float(episode.final["obs/world_model/x"][0])
        assert table.instruction[final, 0] == float(episode.final["obs/instruction/tag"][0])
        assert table.is_final[final] == 1 and table.is_final[steps].sum() == 0
        # the final row is not a step: no action, reward or flag
        assert table.actions[final, 0] == 0 and table.rewards[final] == 0 and table.terminated[final] == 0
    assert len(table) == int(table.lengths.sum())


@pytest.mark.parametrize("span", [2, 4, 7])
def test_termination_targets_are_positive_exactly_at_terminal_transitions(walker, span):
    """Every predicted transition of every window (rows 0..span-2, which start on steps) with its target: the
    positives are exactly the last steps of terminated episodes (each at least once), never a time-out's."""
    schema = WamSchema.from_manifest(load_manifest(walker))
    table = SequenceTable(walker, schema)
    episodes = episodes_by_id(walker)
    starts = table.window_starts(span)
    batch = table.gather(starts, span)
    assert batch.is_final[:, :-1].sum() == 0  # a final row only ever ends a window
    rows = starts[:, None] + torch.arange(span - 1)  # the start row of each predicted transition
    positives = set(rows[batch.terminated[:, :-1] == 1].tolist())
    terminal, timeouts = set(), set()
    for episode_id, offset, length in zip(table.episode_ids, table.offsets, table.lengths, strict=True):
        flags = episodes[episode_id].data["labels/flags/terminated"]
        if length >= span - 1:  # long enough for a window (span - 1 steps and the final row)
            (terminal if flags[-1] else timeouts).add(int(offset + length - 1))
        if flags[-1]:  # the walker reached the goal: the final state is there
            assert table.states[offset + length, 0] == pytest.approx(GOAL)
    assert terminal and timeouts, "the data must have both kinds of episode end"
    assert positives == terminal
    predicted = set(rows.flatten().tolist())
    assert timeouts <= predicted  # the last transition of a time-out is predicted too, as a negative


def test_windows_end_on_final_rows_and_never_start_on_them(walker):
    schema = WamSchema.from_manifest(load_manifest(walker))
    table = SequenceTable(walker, schema)
    for span in (1, 2, 5, MAX_STEPS + 1):
        starts = table.window_starts(span).numpy()
        episode = np.searchsorted(table.offsets, starts, side="right") - 1
        last_row = starts + span - 1
        assert np.all(last_row <= table.offsets[episode] + table.lengths[episode])  # at most the final row
        assert not np.isin(starts, table.offsets + table.lengths).any()  # never starts on a final row
        expected = sum(max(0, length - max(span, 2) + 2) for length in table.lengths)
        assert len(starts) == expected
    assert table.gather(table.window_starts(1), 1).is_final.sum() == 0  # one-row windows (normalizer fits): steps


def test_blocks_serve_the_same_windows_as_one_block(walker):
    schema = WamSchema.from_manifest(load_manifest(walker))
    whole = SequenceTable(walker, schema)
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 3 + schema.contact_dim)
    blocks = SequenceTable(walker, schema, max_resident_bytes=2 * 16 * 3 * row_bytes)
    assert whole.num_blocks == 1 and blocks.num_blocks == 3
    for name in ("states", "instruction", "actions", "rewards", "terminated", "is_final"):
        assert torch.equal(getattr(whole, name), getattr(blocks, name)), name
    span = 5
    starts = whole.window_starts(span)
    shuffled = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))]
    expected, actual = whole.gather(shuffled, span), blocks.gather(shuffled, span)
    for name in ("states", "instruction", "actions", "rewards", "terminated", "contacts", "is_final"):
        assert torch.equal(getattr(expected, name), getattr(actual, name)), name


def test_sequences_without_final_flags_are_all_steps():
    """Sequences built without ``is_final`` (the positional constructor of before) mask nothing and move devices."""
    empty = torch.zeros(2, 3, 0)
    batch = Sequences(torch.zeros(2, 3, 1), empty, torch.zeros(2, 3, 1), torch.zeros(2, 3), torch.zeros(2, 3), empty)
    assert batch.is_final is None and torch.equal(batch.step_mask, torch.ones(2, 3))
    moved = batch.to("cpu")
    assert moved.is_final is None and moved.states.device.type == "cpu"


def test_padded_windows_repeat_the_final_row_and_put_terminal_steps_at_every_position(walker):
    """Training windows (``batches``' default) start on every step; past the final row they repeat it, flagged
    final; each terminal transition is then a target at every position of a window, teacher-forced ones included."""
    schema = WamSchema.from_manifest(load_manifest(walker))
    table = SequenceTable(walker, schema)
    span = 6
    starts = table.window_starts(span, pad_ends=True)
    assert len(starts) == len(table)  # one window per step
    batch = table.gather(starts, span)
    episode = np.searchsorted(table.offsets, starts.numpy(), side="right") - 1
    final_row = torch.from_numpy(table.offsets[episode] + table.lengths[episode])
    rows = starts[:, None] + torch.arange(span)
    past = rows >= final_row[:, None]
    assert torch.equal(batch.is_final == 1, past)  # the final row and its copies, nothing else
    assert torch.equal(batch.states[past], table.states[final_row[:, None].expand_as(rows)][past])
    assert batch.is_final[:, 0].sum() == 0  # no window starts on a final row
    # terminal transitions: targets at every predicted position 0..span-2
    terminal_positions = torch.nonzero(batch.terminated[:, :-1] == 1)[:, 1]
    assert set(terminal_positions.tolist()) == set(range(span - 1))
    # blocks gather the same padded windows
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 3 + schema.contact_dim)
    blocks = SequenceTable(walker, schema, max_resident_bytes=2 * 16 * 3 * row_bytes)
    shuffled = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))]
    expected, actual = table.gather(shuffled, span), blocks.gather(shuffled, span)
    for name in ("states", "instruction", "actions", "rewards", "terminated", "is_final"):
        assert torch.equal(getattr(expected, name), getattr(actual, name)), name
    # batches pads by default: every step starts exactly one window
    seen = torch.cat(
        [b.states[:, 0] for b in blocks.batches(span, 7, torch.Generator().manual_seed(1), drop_last=False)]
    )
    assert sorted(seen[:, 0].tolist()) == sorted(table.states[starts, 0].tolist())
