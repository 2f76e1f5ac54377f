"""train.ensemble_split=env: each ensemble member trains on windows of its own training envs (disjoint, every env
used), and only on them."""

from __future__ import annotations

import pytest
import torch
from linear_system import small_cfg

from wam_isaac.training.ensemble_split import MemberSplitLoss, member_envs, member_slice
from wam_isaac.training.run import make_trainer
from wam_isaac.training.sequences import SequenceTable


def env_of_rows(data, schema) -> dict[tuple[float, ...], int]:
    """Each recorded state row of the dataset -> its episode's env id (the linear system's rows are all distinct)."""
    table = SequenceTable(data, schema)
    rows: dict[tuple[float, ...], int] = {}
    for episode, offset, length in zip(table.episode_ids, table.offsets, table.rows_per_episode, strict=True):
        env = table.reader.episodes[episode].env_id
        for row in table.states[offset : offset + length].tolist():
            rows[tuple(row)] = env
    return rows


def test_members_train_on_disjoint_env_sets_covering_every_env(linear_data, tmp_path):
    # 32 episodes of 8 envs (env = episode % 8); 3 members: 3 + 3 + 2 envs
    cfg = small_cfg(linear_data, tmp_path, "mlp", ensemble=3, history=2, forecast=2, batch_size=24)
    cfg.train.ensemble_split = "env"
    trainer = make_trainer(cfg, log=None)
    env_of = env_of_rows(linear_data, trainer.schema)
    member_sets = [set() for _ in range(3)]
    batches = 0
    for batch in trainer.epoch_batches():
        batches += 1
        for k in range(3):
            chunk = member_slice(batch, 8 * k, 8 * (k + 1))
            for row in chunk.states.reshape(-1, chunk.states.shape[-1]).tolist():
                member_sets[k].add(env_of[tuple(row)])
    assert batches == trainer.steps_per_epoch > 0
    assert sorted(len(s) for s in member_sets) == [2, 3, 3]
    for a in range(3):
        for b in range(a + 1, 3):
            assert not member_sets[a] & member_sets[b], (
                f"members {a} and {b} share envs {member_sets[a] & member_sets[b]}"
            )
    assert set().union(*member_sets) == set(range(8))
    # the parts the trainer serves are exactly the dealt env sets
    dealt = member_envs(list(range(8)), 3, cfg.train.seed)
    assert [sorted(s) for s in member_sets] == dealt


def test_a_member_learns_only_from_its_own_slice(linear_data, tmp_path):
    cfg = small_cfg(linear_data, tmp_path, "mlp", ensemble=2, history=2, forecast=2, batch_size=16)
    cfg.train.ensemble_split = "env"
    trainer = make_trainer(cfg, log=None)
    loss = trainer.loss
    assert isinstance(loss, MemberSplitLoss)
    batch = next(iter(trainer.epoch_batches()))

    def member_grads(batch) -> list[torch.Tensor]:
        trainer.model.zero_grad(set_to_none=False)
        total, _ = loss(batch)
        total.backward()
        return [
            torch.cat([p.grad.flatten() for p in m.parameters() if p.grad is not None]) for m in trainer.model.members
        ]

    before = [g.clone() for g in member_grads(batch)]
    changed = member_slice(batch, 0, 16)
    changed.states[8:] = changed.states[8:] * 3.0  # member 1's slice only
    after = member_grads(changed)
    torch.testing.assert_close(after[0], before[0], rtol=0, atol=0)
    assert (after[1] - before[1]).abs().max() > 1e-3


def test_bad_settings_are_refused(linear_data, tmp_path):
    cfg = small_cfg(linear_data, tmp_path, "mlp", ensemble=9, history=2, forecast=2, batch_size=18)
    cfg.train.ensemble_split = "env"
    with pytest.raises(ValueError, match="8 envs for 9 members"):
        make_trainer(cfg, log=None)
    cfg = small_cfg(linear_data, tmp_path, "mlp", ensemble=3, history=2, forecast=2, batch_size=16)
    cfg.train.ensemble_split = "env"
    with pytest.raises(ValueError, match="not a multiple of the 3 ensemble members"):
        make_trainer(cfg, log=None)
    cfg.train.ensemble_split = "bootstrap"
    with pytest.raises(ValueError, match="expected one of none, env"):
        make_trainer(cfg, log=None)
    cfg = small_cfg(linear_data, tmp_path, "mlp", history=2, forecast=2)
    cfg.train.ensemble_split = "env"
    with pytest.raises(ValueError, match="needs an ensemble"):
        make_trainer(cfg, log=None)
