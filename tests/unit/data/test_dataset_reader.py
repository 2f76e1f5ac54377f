"""verify names corrupted or missing shards; unlisted files; the train/val split by episode."""

from __future__ import annotations

import pytest

from wam_isaac.data.errors import ManifestError
from wam_isaac.data.reader import read_episode, split_by_episode, unlisted_files, verify


def test_flipped_byte_is_reported_by_shard_name(dataset):
    out_dir, _ = dataset
    assert verify(out_dir) == []
    shard = out_dir / "shard_00001.h5"
    content = bytearray(shard.read_bytes())
    content[len(content) // 2] ^= 0x01
    shard.write_bytes(bytes(content))
    assert verify(out_dir) == ["shard_00001.h5"]
    (out_dir / "shard_00002.h5").unlink()
    assert verify(out_dir) == ["shard_00001.h5", "shard_00002.h5"]


def test_files_outside_the_manifest_are_listed_not_verified(dataset):
    out_dir, _ = dataset
    (out_dir / ".shard_00003.h5.tmp").write_bytes(b"partial")
    (out_dir / "shard_00007.h5").write_bytes(b"stray")
    (out_dir / "notes.txt").write_text("not a dataset file")
    assert unlisted_files(out_dir) == [".shard_00003.h5.tmp", "shard_00007.h5"]
    assert verify(out_dir) == []


def test_missing_manifest_or_episode_raises(tmp_path, dataset):
    out_dir, _ = dataset
    with pytest.raises(ManifestError, match="no manifest.json"):
        verify(tmp_path)
    with pytest.raises(ManifestError, match="episode 5 is not in"):
        read_episode(out_dir, 5)


def test_split_by_episode_is_disjoint_complete_and_deterministic(tmp_path):
    from synthetic_episodes import write_dataset

    write_dataset(tmp_path / "d", [2] * 20, episodes_per_shard=6)
    train, val = split_by_episode(tmp_path / "d", val_fraction=0.25, seed=3)
    assert len(val) == 5 and not set(train) & set(val) and sorted(train + val) == list(range(20))
    assert split_by_episode(tmp_path / "d", 0.25, seed=3) == (train, val)
    assert split_by_episode(tmp_path / "d", 0.25, seed=4)[1] != val
    assert split_by_episode(tmp_path / "d", 0.0, seed=3) == (list(range(20)), [])
    assert len(split_by_episode(tmp_path / "d", 0.01, seed=3)[1]) == 1
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_episode(tmp_path / "d", 1.0)
