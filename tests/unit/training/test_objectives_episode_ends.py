"""Objectives at episode ends, on windows of a dataset whose episodes terminate or time out (with their final states):
value targets equal closed-form discounted sums (cut at a termination, bootstrapped from ``V(s_T)`` at a time-out,
never shifted by the reward's mean); a final row's zero-filled action, reward and contacts change no loss; a small
world model learns to predict termination at exactly the terminal steps."""

from __future__ import annotations

import pytest
import torch
from episode_ends import REWARD, write_walker_dataset

from wam_isaac.data import load_manifest
from wam_isaac.models import TrunkCfg, WamSchema, WorldModel, model_cfg
from wam_isaac.models.wam import JointWAM
from wam_isaac.training.objectives import LossCfg, model_loss, value_targets, world_model_loss
from wam_isaac.training.sequences import Sequences, SequenceTable


@pytest.fixture(scope="module")
def walker_table(tmp_path_factory) -> SequenceTable:
    data = write_walker_dataset(tmp_path_factory.mktemp("walker") / "d", episodes=96, seed=3)
    return SequenceTable(data, WamSchema.from_manifest(load_manifest(data)))


def closed_form_returns(batch: Sequences, values: torch.Tensor, reward: float, gamma: float) -> torch.Tensor:
    """Discounted sums of a constant ``reward`` written out per window: to a termination at position ``p``,
    ``reward (1 - gamma^(p - i + 1)) / (1 - gamma)``; else to the window's last row ``L - 1`` plus the bootstrap,
    ``reward (1 - gamma^(L - 1 - i)) / (1 - gamma) + gamma^(L - 1 - i) V_{L-1}``."""
    span = batch.rewards.shape[1]
    expected = torch.zeros_like(batch.rewards)
    for b in range(batch.batch_size):
        ends = torch.nonzero(batch.terminated[b]).flatten()
        for i in range(span):
            if len(ends) and i <= int(ends[0]):
                k = int(ends[0]) - i + 1
                expected[b, i] = reward * (1 - gamma**k) / (1 - gamma)
            elif not len(ends):
                k = span - 1 - i
                expected[b, i] = reward * (1 - gamma**k) / (1 - gamma) + gamma**k * values[b, -1]
    return expected


def test_value_targets_are_closed_form_sums_cut_at_terminations_and_bootstrapped_at_time_outs(walker_table):
    model = JointWAM(walker_table.schema, model_cfg("joint", trunk=TrunkCfg(hidden=8, layers=1), head_hidden=8))
    model.normalizers.reward.mean.fill_(0.7)  # a mean that must not enter the targets
    model.normalizers.reward.std.fill_(2.0)
    span, gamma = 6, 0.9
    batch = walker_table.gather(walker_table.window_starts(span), span)
    values = torch.randn(batch.rewards.shape, generator=torch.Generator().manual_seed(0))
    targets = value_targets(model, batch, values, gamma)
    steps = batch.step_mask == 1  # a final row's own target is not regressed on
    torch.testing.assert_close(targets[steps], closed_form_returns(batch, values, REWARD / 2.0, gamma)[steps])
    ends_on_final = batch.is_final[:, -1] == 1
    terminal = batch.terminated.sum(1) == 1
    assert (ends_on_final & terminal).any() and (ends_on_final & ~terminal).any()  # both ends are exercised
    # a time-out: the step before the final row bootstraps V(s_T) (the final row's value), one discounted step on
    timeout = torch.nonzero(ends_on_final & ~terminal).flatten()
    torch.testing.assert_close(targets[timeout, -2], REWARD / 2.0 + gamma * values[timeout, -1])
    # a termination: its last step's target is its reward alone, whatever V(s_T)
    done = torch.nonzero(ends_on_final & terminal).flatten()
    torch.testing.assert_close(targets[done, -2], torch.full((len(done),), REWARD / 2.0))


def test_value_targets_of_padded_windows_bootstrap_at_the_final_row(walker_table):
    """A padded window (past the end, the final row repeated): the targets of its steps are those of the unpadded
    window that ends on the final row (V(s_T) after a time-out, nothing after a termination), whatever the values of
    the padding rows."""
    model = JointWAM(walker_table.schema, model_cfg("joint", trunk=TrunkCfg(hidden=8, layers=1), head_hidden=8))
    model.normalizers.reward.std.fill_(2.0)
    span, gamma = 6, 0.9
    starts = walker_table.window_starts(span, pad_ends=True)
    batch = walker_table.gather(starts, span)
    values = torch.randn(batch.rewards.shape, generator=torch.Generator().manual_seed(0))
    targets = value_targets(model, batch, values, gamma)
    padded = torch.nonzero(batch.is_final[:, -2] == 1).flatten()  # the final row before the window's last
    assert len(padded) > 0
    for b in padded.tolist():
        end = int(torch.nonzero(batch.is_final[b]).flatten()[0])  # the final row: s_T
        steps = slice(0, end)
        window = Sequences(
            *(getattr(batch, name)[b : b + 1, : end + 1] for name in ("states", "instruction", "actions", "rewards")),
            batch.terminated[b : b + 1, : end + 1],
            batch.contacts[b : b + 1, : end + 1],
            batch.is_final[b : b + 1, : end + 1],
        )
        expected = closed_form_returns(window, values[b : b + 1, : end + 1], REWARD / 2.0, gamma)
        torch.testing.assert_close(targets[b, steps], expected[0, steps])


def test_final_rows_zero_filled_fields_change_no_loss(walker_table):
    """The final row's action, reward and contacts are not data: garbage there leaves every loss term unchanged
    (behaviour cloning and the value regression skip the row; no predicted transition starts on it)."""
    torch.manual_seed(0)
    model = JointWAM(walker_table.schema, model_cfg("joint", trunk=TrunkCfg(hidden=16, layers=1), head_hidden=16))
    span = 5
    batch = walker_table.gather(walker_table.window_starts(span), span)
    assert batch.is_final[:, -1].sum() > 0
    garbage = Sequences(
        batch.states,
        batch.instruction,
        batch.actions + 1e3 * batch.is_final[..., None],
        batch.rewards + 1e3 * batch.is_final,
        batch.terminated,
        batch.contacts,
        batch.is_final,
        batch.action_before,
    )
    with torch.no_grad():
        _, terms = model_loss(model, batch, 2, LossCfg())
        _, garbage_terms = model_loss(model, garbage, 2, LossCfg())
        unmasked = Sequences(
            *(getattr(garbage, name) for name in ("states", "instruction", "actions", "rewards")),
            garbage.terminated,
            garbage.contacts,
        )
        _, unmasked_terms = model_loss(model, unmasked, 2, LossCfg())
    for name, value in terms.items():
        torch.testing.assert_close(garbage_terms[name], value, msg=name)
    assert unmasked_terms["action_nll"] > 10 * terms["action_nll"]  # the mask is what keeps the row out


def test_termination_head_learns_the_terminal_steps(walker_table):
    """A small GRU world model trained on windows that end on final rows predicts a termination probability above
    0.5 at every terminal transition and below 0.5 at every other one. (Trained on the windows of a table without
    final rows, those that do not reach a final row, it never sees a positive example and predicts below 0.001 at the
    terminal steps.)"""
    torch.manual_seed(0)
    # the walker's moves are exact: a floor on the predicted std keeps the dynamics NLL from dwarfing the other heads
    cfg = model_cfg("gru", trunk=TrunkCfg(kind="gru", hidden=32, layers=1), head_hidden=32, min_log_std=-1.0)
    model = WorldModel(walker_table.schema, cfg)
    history, span = 2, 4
    model.fit_normalizers(
        walker_table.gather(walker_table.window_starts(1), 1), walker_table.gather(walker_table.window_starts(2), 2)
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    starts = walker_table.window_starts(span, pad_ends=True)  # the trainer's windows (SequenceTable.batches)
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        batch = walker_table.gather(starts[torch.randint(len(starts), (64,), generator=generator)], span)
        loss, _ = world_model_loss(model, batch, history, LossCfg(termination_weight=1.0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    batch = walker_table.gather(walker_table.window_starts(span), span)
    with torch.no_grad():
        _, prediction, _ = model.teacher_forced(batch.states[:, :-1], batch.instruction[:, :-1], batch.actions[:, :-1])
    probability = torch.sigmoid(prediction.termination_logit[..., 0])
    terminal = batch.terminated[:, :-1] == 1
    assert terminal.sum() >= 20
    assert probability[terminal].min() > 0.5, f"terminal steps: min probability {probability[terminal].min():.3f}"
    assert probability[~terminal].max() < 0.5, f"other steps: max probability {probability[~terminal].max():.3f}"
