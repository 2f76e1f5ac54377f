"""Env ids in the episode table, the train/val split by env, and ``wam inspect --verify`` of a dataset with no
episode (a run killed before its first shard)."""

from __future__ import annotations

import json

import pytest
from synthetic_episodes import KEY_SPECS, write_dataset

from wam_isaac.cli import main
from wam_isaac.data import DatasetWriter, episode_table, load_manifest, split_by_env


def test_episode_table_lists_each_episodes_env(tmp_path):
    episodes = write_dataset(tmp_path / "d", [3, 1, 2, 4, 2, 5], episodes_per_shard=4)
    table = episode_table(load_manifest(tmp_path / "d"))
    assert [table[i].env_id for i in range(6)] == [e.env_id for e in episodes] == [0, 1, 2, 3, 0, 1]
    assert [table[i].num_samples for i in range(6)] == [3, 1, 2, 4, 2, 5]


def test_split_by_env_keeps_each_env_on_one_side(tmp_path):
    write_dataset(tmp_path / "d", [2] * 24, episodes_per_shard=5)  # env id = episode id % 4: 6 episodes per env
    train, val = split_by_env(tmp_path / "d", val_fraction=0.3, seed=1)
    assert sorted(train + val) == list(range(24)) and not set(train) & set(val)
    val_envs, train_envs = {i % 4 for i in val}, {i % 4 for i in train}
    assert not val_envs & train_envs
    assert len(val) == 12  # two envs: one (6 episodes) is < 30 % of 24, so a second one is added
    assert split_by_env(tmp_path / "d", 0.3, seed=1) == (train, val)
    chosen = {frozenset(i % 4 for i in split_by_env(tmp_path / "d", 0.1, seed=s)[1]) for s in range(8)}
    assert len(chosen) > 1 and all(len(envs) == 1 for envs in chosen), "the seed chooses which env validates"
    assert split_by_env(tmp_path / "d", 0.0) == (list(range(24)), [])
    assert len({i % 4 for i in split_by_env(tmp_path / "d", 0.99)[0]}) == 1, "one env at least stays in train"
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_env(tmp_path / "d", 1.0)


def test_inspect_verify_of_a_dataset_without_episodes(tmp_path, capsys):
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS):
        pass  # a run that stopped before any episode ended
    assert load_manifest(tmp_path / "d")["totals"]["episodes"] == 0
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", str(tmp_path / "d"), "--verify"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0 and "episodes     0" in out and "verify       ok" in out
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", str(tmp_path / "d"), "--verify", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 0 and summary["success_rate"] is None and summary["verify"]["ok"]
