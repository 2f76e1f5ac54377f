"""``train.action_target=expert`` (DAgger's labels): the action head imitates ``expert_actions`` while the world model
and the previous-action inputs keep the executed ``actions``.

The synthetic dataset is the linear system of :mod:`linear_system` driven by random executed actions, labeled by an
expert that is a fixed function of the state (:func:`expert`); its episodes end with final rows (``s_T``) and its
shards are split between train and validation, so the widened action column is checked where it is hardest to align.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from linear_system import KEY_SPECS, linear_episode, small_cfg

from wam_isaac.cli import main
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.models.schema import WamSchema
from wam_isaac.training.action_targets import ExpertTargetTable, with_action_targets
from wam_isaac.training.ensemble_split import member_parts
from wam_isaac.training.run import dataset_schema, make_trainer


def expert(pos: np.ndarray | torch.Tensor):
    """The labeling expert: an offset proportional controller of the first two state entries,
    ``clip(0.5 - 0.3 pos, -1, 1)`` (its mean, about 0.5, is far from the executed actions' 0)."""
    return (0.5 - 0.3 * pos).clip(-1.0, 1.0)


@pytest.fixture(scope="module")
def expert_data(tmp_path_factory):
    """24 episodes of 30 steps, 8 envs, 6 per shard, with expert labels and final states."""
    rng = np.random.default_rng(3)
    specs = dict(KEY_SPECS, expert_actions=KeySpec((2,), "float32", "1", "the expert's action"))
    out = tmp_path_factory.mktemp("expert") / "data"
    episodes = []
    for index in range(24):
        episode = linear_episode(rng, 30, smooth=False, env_id=index % 8)
        pos = episode.data["obs/world_model/pos"]
        episode.data["expert_actions"] = expert(pos).astype(np.float32)
        final_pos = (pos[-1] + 0.1).astype(np.float32)  # s_T: any state after the last step
        episode.final = {
            "obs/world_model/pos": final_pos,
            "obs/world_model/vel": episode.data["obs/world_model/vel"][-1],
            "obs/instruction/goal": episode.data["obs/instruction/goal"][-1],
        }
        episodes.append(episode)
    with DatasetWriter(out, "WAM-Linear", "linear", specs, episodes_per_shard=6) as writer:
        writer.write_many(episodes)
    return out


def test_expert_targets_align_with_their_rows_including_final_rows(expert_data):
    schema = dataset_schema(expert_data)
    for ids in (None, [1, 2, 7, 8, 13, 20, 23]):  # whole shards, and parts of shards
        table = ExpertTargetTable(expert_data, schema, ids)
        assert table.has_final
        starts = table.window_starts(6, pad_ends=True)
        batch = with_action_targets(table.gather(starts, 6), table)
        steps = batch.step_mask > 0
        assert batch.actions.shape == batch.action_targets.shape == (len(starts), 6, 2)
        assert (~steps).any(), "windows reaching the final rows"
        torch.testing.assert_close(batch.action_targets[steps], expert(batch.states[..., :2])[steps], atol=1e-6, rtol=0)
        assert (batch.action_targets[~steps] == 0).all()
        # the executed actions are the random ones, not the labels
        assert (batch.actions[steps] - batch.action_targets[steps]).abs().mean() > 0.3
        assert batch.to("cpu").action_targets is not None


def test_ensemble_members_tables_keep_the_expert_labels(expert_data):
    """``train.ensemble_split=env`` deals the episodes to per-member tables: each must still carry the labels (it
    used to rebuild plain tables, and the members trained on the executed actions)."""
    schema = dataset_schema(expert_data)
    parts = member_parts(ExpertTargetTable(expert_data, schema), members=3, seed=0)
    for table in parts.tables:
        batch = with_action_targets(table.gather(table.window_starts(4), 4), table)
        steps = batch.step_mask > 0
        assert steps.sum() > 100
        torch.testing.assert_close(batch.action_targets[steps], expert(batch.states[..., :2])[steps], atol=1e-6, rtol=0)


def test_the_action_head_learns_the_expert_labels_not_the_executed_actions(expert_data, tmp_path):
    cfg = small_cfg(expert_data, tmp_path / "run", "joint", epochs=4, batch_size=64, lr=1e-2, history=2, forecast=2)
    cfg.train.action_target = "expert"
    cfg.train.val_fraction = 0.25
    trainer = make_trainer(cfg, log=None)
    trainer.run_dir = None  # write nothing
    trainer.fit()
    model = trainer.model.eval()
    table = trainer.val_table  # envs never trained on
    starts = table.window_starts(2)
    batch = with_action_targets(table.gather(starts, 2), table)
    with torch.no_grad():
        acted = model.act(batch.states, batch.instruction, torch.cat([torch.zeros_like(batch.actions[:, :1]),
                                                                      batch.actions[:, :-1]], 1))  # fmt: skip
    labels, executed = batch.action_targets[:, -1], batch.actions[:, -1]
    to_expert = (acted - labels).square().mean().item()
    to_executed = (acted - executed).square().mean().item()
    # a head trained on the executed actions (uniform, independent of the state) would act ~0 on average
    gap = labels.mean().item() - executed.mean().item()
    assert gap > 0.4 and abs(acted.mean().item() - labels.mean().item()) < 0.3 * gap
    assert to_expert < 0.1 * to_executed, (to_expert, to_executed)
    schema = WamSchema.from_dict(dataclasses.asdict(model.schema))
    assert "expert_actions" not in schema.dataset_keys()  # the model's inputs are unchanged


def test_expert_target_without_labels_is_one_line_exit_2(linear_data, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train-model", "--data", str(linear_data), "--model", "joint", "--history", "2", "--forecast", "2"]
    with pytest.raises(SystemExit) as raised:
        main([*args, "--action_target", "expert", "--out", str(out)])
    message = capsys.readouterr().err.strip()
    assert raised.value.code == 2
    assert "has no 'expert_actions' key" in message and "--expert_labels" in message and "\n" not in message
    assert not out.exists()
