"""The previous action at a window's first row: a window cut from the middle of an episode carries the action taken
just before it (``Sequences.action_before``), so the first row's token holds ``a_{t-1}`` as the closed loop and the
deployed policy see it, not a zero that only an episode's start has. Checked on the dataset table (one block and
several), on WamPPO's replay (resets and the oldest stored step), and end to end: the joint WAM's policy on a window
equals its policy on the whole episode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from episode_ends import write_walker_dataset
from test_wam_ppo_replay import hand_replay

from wam_isaac.data import load_manifest
from wam_isaac.data.reader import iter_episodes
from wam_isaac.models import TrunkCfg, WamSchema, model_cfg
from wam_isaac.models.wam import JointWAM
from wam_isaac.training.sequences import SequenceTable


@pytest.fixture(scope="module")
def walker(tmp_path_factory):
    return write_walker_dataset(tmp_path_factory.mktemp("walker") / "d", episodes=40)


def expected_before(table: SequenceTable, data, starts: torch.Tensor) -> torch.Tensor:
    """The recorded action before each start row (0 at an episode's first step), read from the episodes themselves."""
    actions = {episode_id: episode.data["actions"] for episode_id, episode in iter_episodes(data)}
    rows = []
    for start in starts.tolist():
        index = int(torch.searchsorted(torch.as_tensor(table.offsets), torch.tensor(start), right=True)) - 1
        step = start - int(table.offsets[index])
        episode = actions[table.episode_ids[index]]
        rows.append(episode[step - 1] if step > 0 else episode[0] * 0.0)
    return torch.from_numpy(np.stack(rows)).reshape(len(rows), -1)


@pytest.mark.parametrize("blocks", [1, 3])
def test_a_windows_previous_action_is_the_step_before_its_start(walker, blocks):
    schema = WamSchema.from_manifest(load_manifest(walker))
    row_bytes = 4 * (schema.state_dim + schema.instruction_dim + schema.action_dim + 3 + schema.contact_dim)
    budget = 2 << 30 if blocks == 1 else 2 * 16 * 3 * row_bytes
    table = SequenceTable(walker, schema, max_resident_bytes=budget)
    assert table.num_blocks == blocks
    starts = table.window_starts(4, pad_ends=True)  # every step of every episode, first steps included
    shuffled = starts[torch.randperm(len(starts), generator=torch.Generator().manual_seed(0))]
    batch = table.gather(shuffled, 4)
    expected = expected_before(table, walker, shuffled)
    torch.testing.assert_close(batch.action_before, expected, rtol=0, atol=0)
    opens = torch.as_tensor(table.offsets)
    first = torch.isin(shuffled, opens)
    assert first.any() and (~first).any()
    assert (batch.action_before[first] == 0).all() and (batch.action_before[~first].abs() == 1).all()  # actions +-1


def test_replay_windows_carry_the_action_before_them_except_after_a_reset():
    replay = hand_replay()  # stored steps 2..6 (action = state); env 0 ends episodes at steps 3 and 5, env 1 at 4
    starts, envs = torch.tensor([0, 1, 2, 1, 3]), torch.tensor([1, 1, 0, 0, 1])
    window = replay.gather(starts, envs, 2)
    # env 1 step 2: the oldest stored (nothing known before) -> 0; env 1 step 3: step 2's action 12;
    # env 0 step 4: step 3 ended an episode -> 0; env 0 step 3: step 2's action 2; env 1 step 5: step 4 ended -> 0
    assert window.action_before[:, 0].tolist() == [0.0, 12.0, 0.0, 2.0, 0.0]


def test_joint_wam_policy_on_a_window_equals_its_policy_on_the_whole_episode(walker):
    """An MLP trunk reads each step's token alone, so the policy at a step cannot depend on where a window was cut;
    with the first row's previous action zeroed (the old windows) it does."""
    torch.manual_seed(0)
    schema = WamSchema.from_manifest(load_manifest(walker))
    table = SequenceTable(walker, schema)
    model = JointWAM(schema, model_cfg("joint", trunk=TrunkCfg(kind="mlp", hidden=16, layers=1), head_hidden=16))
    episode = int(torch.argmax(torch.as_tensor(table.lengths)))
    length, offset = int(table.lengths[episode]), int(table.offsets[episode])
    whole = table.gather(torch.tensor([offset]), length)
    reference = model.act_sequence(whole.states, whole.instruction, whole.actions, whole.action_before).mean
    starts = torch.arange(offset + 1, offset + length - 3)
    windows = table.gather(starts, 3)
    policy = model.act_sequence(windows.states, windows.instruction, windows.actions, windows.action_before).mean
    cut = starts - offset
    expected = torch.stack([reference[0, k : k + 3] for k in cut.tolist()])
    torch.testing.assert_close(policy, expected)
    zeroed = model.act_sequence(windows.states, windows.instruction, windows.actions).mean
    assert (zeroed[:, 0] - expected[:, 0]).abs().amax() > 1e-4
