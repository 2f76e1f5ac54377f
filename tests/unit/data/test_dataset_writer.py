"""DatasetWriter: roundtrip equality, columnar layout and manifest, chunk and block boundaries, output-directory
checks, failures, resume."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from synthetic_episodes import KEY_SPECS, assert_episodes_equal, make_episode, write_dataset

from wam_isaac.data import shards
from wam_isaac.data.dataset_dir import begin_segment
from wam_isaac.data.errors import DatasetExistsError, DatasetNotWritableError, ManifestError, WriterError
from wam_isaac.data.manifest import load_manifest
from wam_isaac.data.reader import DatasetReader, iter_episodes, read_episode, verify
from wam_isaac.data.writer import DatasetWriter


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_roundtrip_equals_every_array_attribute_and_final_state(dataset):
    out_dir, episodes = dataset
    read = list(iter_episodes(out_dir))
    assert [episode_id for episode_id, _ in read] == [0, 1, 2, 3, 4]
    for episode_id, actual in read:
        assert_episodes_equal(actual, episodes[episode_id])
    assert_episodes_equal(read_episode(out_dir, 3), episodes[3])
    assert read_episode(out_dir, 4).attrs == {"timeout": False, "episode_index": 1, "note": "e4"}


def test_manifest_counts_and_checksums_match_the_files(dataset):
    out_dir, episodes = dataset
    manifest = load_manifest(out_dir)
    assert [s["name"] for s in manifest["shards"]] == ["shard_00000.h5", "shard_00001.h5", "shard_00002.h5"]
    assert [(s["episodes"], s["transitions"], s["episode_ids"]) for s in manifest["shards"]] == [
        (2, 10, [0, 1]), (2, 15, [2, 3]), (1, 1, [4])]  # fmt: skip
    assert [s["episode_lengths"] for s in manifest["shards"]] == [[7, 3], [5, 10], [1]]
    assert [s["env_ids"] for s in manifest["shards"]] == [[0, 1], [2, 3], [0]]
    assert manifest["totals"] == {"episodes": 5, "transitions": 26, "successes": 3, "dropped_episodes": 0}
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256((out_dir / shard["name"]).read_bytes()).hexdigest()
    assert manifest["complete"] is True and manifest["task_id"] == "WAM-Test" and manifest["env_config_hash"] == "cafe"
    assert manifest["keys"]["states/joint_pos"] == {"group": "states", "shape": [2], "dtype": "float64", "unit": "rad",
                                                    "description": ""}  # fmt: skip
    assert manifest["dr_keys"] == {"robot/body_mass": {"shape": [2], "dtype": "float32"},
                                   "action/joint_pos/latency": {"shape": [], "dtype": "int64"}}  # fmt: skip
    assert manifest["attr_keys"] == ["episode_index", "note", "timeout"]
    assert manifest["final_keys"] == ["obs/policy", "states/joint_pos"]
    assert manifest["schema_version"] == 3 and manifest["compression"] == "gzip" and manifest["compression_level"] == 1
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "manifest.json",
        *[s["name"] for s in manifest["shards"]],
    ]


def test_shard_is_columnar_with_an_episode_index_readable_by_plain_h5py(dataset):
    out_dir, episodes = dataset
    with h5py.File(out_dir / "shard_00001.h5", "r") as file:
        assert file.attrs["format_version"] == 1 and file.attrs["total"] == 15 and file.attrs["shard_index"] == 1
        assert json.loads(file.attrs["env_args"])["env_name"] == "WAM-Test" and file.attrs["schema_version"] == 3
        policy = file["steps/obs/policy"]
        assert policy.shape == (15, 3) and policy.compression == "gzip" and policy.shuffle and policy.chunks[1:] == (3,)
        # episode 2 (5 steps) then episode 3 (10 steps), back to back; HDF5's own filters decode the direct chunks
        np.testing.assert_array_equal(policy[()], np.concatenate([episodes[2].data["obs/policy"],
                                                                   episodes[3].data["obs/policy"]]))  # fmt: skip
        assert file["episodes/episode_id"][()].tolist() == [2, 3] and file["episodes/start"][()].tolist() == [0, 5]
        assert file["episodes/num_samples"][()].tolist() == [5, 10] and file["episodes/seed"][()].tolist() == [
            1002,
            1003,
        ]
        assert file["episodes/success"][()].tolist() == [True, False]
        assert file["episodes/attrs/note"].asstr()[()].tolist() == ["e2", "e3"]
        np.testing.assert_array_equal(file["episodes/dr/robot/body_mass"][1], episodes[3].dr["robot/body_mass"])
        np.testing.assert_array_equal(file["final/obs/policy"][()], [[2, 5, 0.5], [3, 10, 0.5]])


@pytest.mark.parametrize("compression", ["gzip", None])
def test_many_episodes_across_chunk_and_block_boundaries(tmp_path, monkeypatch, compression):
    monkeypatch.setattr(shards, "CHUNK_BYTES", 64)  # obs/policy: 4 rows per chunk, dones: 64, labels/contact: 16
    lengths = [1 + (7 * i) % 13 for i in range(41)]
    episodes = write_dataset(
        tmp_path / "d", lengths, episodes_per_shard=17, compression=compression, block_bytes=300
    )  # a block of a few episodes: every block ends mid-chunk
    manifest = load_manifest(tmp_path / "d")
    assert [s["episodes"] for s in manifest["shards"]] == [17, 17, 7] and verify(tmp_path / "d") == []
    with h5py.File(tmp_path / "d" / "shard_00000.h5", "r") as file:
        assert file["steps/obs/policy"].chunks == (4, 3) and file["steps/dones"].chunks == (64,)
        assert file["steps/obs/policy"].compression == compression
    for episode_id, episode in iter_episodes(tmp_path / "d"):
        assert_episodes_equal(episode, episodes[episode_id])


def test_reader_serves_windows_within_episodes(dataset):
    out_dir, episodes = dataset
    with DatasetReader(out_dir) as reader:
        window = reader.window(3, 2, 4, ["obs/policy", "labels/contact"])
        np.testing.assert_array_equal(window["obs/policy"], episodes[3].data["obs/policy"][2:6])
        np.testing.assert_array_equal(window["labels/contact"], episodes[3].data["labels/contact"][2:6])
        np.testing.assert_array_equal(reader.rows(3, "actions", 9), episodes[3].data["actions"][9:])
        with pytest.raises(IndexError, match="outside episode 3"):
            reader.rows(3, "actions", 5, 11)  # would run into the next episode's rows
        with pytest.raises(ManifestError, match="episode 9 is not in"):
            reader.rows(9, "actions")
        assert [reader.episodes[i].start for i in range(5)] == [0, 7, 0, 5, 0]


def test_non_empty_dir_without_overwrite_raises_and_leaves_files_untouched(dataset):
    out_dir, _ = dataset
    before = snapshot(out_dir)
    with pytest.raises(DatasetExistsError, match="not empty.*overwrite"):
        DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS)
    with pytest.raises(ValueError, match="episodes_per_shard"):
        DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS, overwrite=True, episodes_per_shard=0)
    assert snapshot(out_dir) == before


def test_overwrite_replaces_dataset_files_only(dataset):
    out_dir, _ = dataset
    (out_dir / "notes.txt").write_text("mine")
    write_dataset(out_dir, [2], overwrite=True)
    assert sorted(path.name for path in out_dir.iterdir()) == ["manifest.json", "notes.txt", "shard_00000.h5"]
    assert load_manifest(out_dir)["totals"]["episodes"] == 1 and verify(out_dir) == []


def test_unwritable_out_dir_raises_before_writing(tmp_path):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(DatasetNotWritableError, match="a_file"):
        DatasetWriter(tmp_path / "a_file" / "dataset", "WAM-Test", "cafe", KEY_SPECS)
    with pytest.raises(DatasetNotWritableError, match="not a directory"):
        DatasetWriter(tmp_path / "a_file", "WAM-Test", "cafe", KEY_SPECS)


def test_exception_mid_shard_deletes_temp_shard_and_keeps_manifest_truthful(tmp_path):
    out_dir = tmp_path / "d"
    with pytest.raises(KeyboardInterrupt), DatasetWriter(out_dir, "W", "h", KEY_SPECS, episodes_per_shard=2) as writer:
        writer.write_many(make_episode(i, 3) for i in range(3))  # shard 0 handed over; episode 2 pending
        writer.add_dropped(2)
        deadline = time.monotonic() + 30
        while not load_manifest(out_dir)["shards"] and time.monotonic() < deadline:
            time.sleep(0.01)
        raise KeyboardInterrupt  # queued and pending episodes are discarded, published shards stay
    manifest = load_manifest(out_dir)
    assert sorted(path.name for path in out_dir.iterdir()) == ["manifest.json", "shard_00000.h5"]
    assert [s["name"] for s in manifest["shards"]] == ["shard_00000.h5"] and manifest["complete"] is False
    assert verify(out_dir) == []


def test_dropped_episodes_are_counted_in_the_manifest(tmp_path):
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS) as writer:
        writer.write(make_episode(0, 4))
        writer.add_dropped(2)
        writer.add_dropped(1)
    totals = load_manifest(tmp_path / "d")["totals"]
    assert totals["dropped_episodes"] == 3 and totals["episodes"] == 1


def test_writing_thread_failure_is_raised_to_the_caller(tmp_path, monkeypatch):
    def full_disk(self, block):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shards.ShardWriter, "append", full_disk)
    writer = DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS)
    writer.write(make_episode(0, 2))
    with pytest.raises(WriterError, match="No space left") as error:
        writer.close()
    assert isinstance(error.value.__cause__, OSError)
    assert not list((tmp_path / "d").glob(".*.tmp")) and load_manifest(tmp_path / "d")["shards"] == []


def test_episode_not_matching_the_dataset_is_rejected(tmp_path):
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS) as writer:
        episode = make_episode(0, 3)
        episode.data["actions"] = episode.data["actions"].astype(np.float64)
        with pytest.raises(ValueError, match="actions.*float64.*expected float32"):
            writer.write(episode)
        writer.write(make_episode(1, 3))
        other_dr = make_episode(2, 3)
        other_dr.dr.pop("robot/body_mass")
        with pytest.raises(ValueError, match="dr_keys"):
            writer.write(other_dr)
        no_final = make_episode(3, 3)
        no_final.final = {}
        with pytest.raises(ValueError, match="final_keys"):
            writer.write(no_final)


def test_resume_continues_shards_and_episode_ids_and_deletes_unlisted_files(tmp_path):
    out_dir = tmp_path / "d"
    first = write_dataset(out_dir, [3, 4, 5], episodes_per_shard=2)
    (out_dir / ".shard_00002.h5.tmp").write_bytes(b"left by a kill")
    (out_dir / "shard_00002.h5").write_bytes(b"complete but unlisted")
    with DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS, episodes_per_shard=2, resume=True) as writer:
        writer.add_dropped(1)
        writer.write_many(make_episode(i, 2) for i in range(3, 6))
    manifest = load_manifest(out_dir)
    assert [s["episode_ids"] for s in manifest["shards"]] == [[0, 1], [2], [3, 4], [5]]
    assert [s["name"] for s in manifest["shards"]][2:] == ["shard_00002.h5", "shard_00003.h5"]
    assert manifest["totals"]["episodes"] == 6 and manifest["totals"]["dropped_episodes"] == 1
    assert verify(out_dir) == [] and not list(out_dir.glob(".*"))
    assert_episodes_equal(read_episode(out_dir, 1), first[1])
    assert_episodes_equal(read_episode(out_dir, 5), make_episode(5, 2))


def test_resume_of_another_task_or_config_changes_nothing(tmp_path):
    out_dir = tmp_path / "d"
    write_dataset(out_dir, [3, 4, 5])
    (out_dir / ".shard_00009.h5.tmp").write_bytes(b"left by a kill")
    before = snapshot(out_dir)
    with pytest.raises(ManifestError, match="holds task WAM-Test, not WAM-Other"):
        DatasetWriter(out_dir, "WAM-Other", "cafe", KEY_SPECS, resume=True)
    with pytest.raises(ManifestError, match="another env config"):
        DatasetWriter(out_dir, "WAM-Test", "beef", KEY_SPECS, resume=True)
    with pytest.raises(ManifestError, match="other keys"):
        DatasetWriter(out_dir, "WAM-Test", "cafe", {**KEY_SPECS, "labels/new": KEY_SPECS["rewards"]}, resume=True)
    assert snapshot(out_dir) == before


def test_begin_segment_records_one_new_seed_per_run_and_refuses_another_config(tmp_path):
    out_dir = tmp_path / "d"
    env_args = {"env_name": "WAM-Test", "type": 2, "env_kwargs": {}}
    seed, manifest = begin_segment(out_dir, "WAM-Test", "cafe", env_args, seed=5)
    assert seed == 5 and manifest["shards"] == [] and load_manifest(out_dir)["segments"][0]["seed"] == 5
    with DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS, episodes_per_shard=2, resume=True) as writer:
        writer.write_many(make_episode(i, 2) for i in range(3))
    seed, _ = begin_segment(out_dir, "WAM-Test", "cafe", env_args, seed=5, resume=True)
    assert seed == 6, "a resumed run never replays a seed"
    segments = load_manifest(out_dir)["segments"]
    assert [(s["seed"], s["first_episode"]) for s in segments] == [(5, 0), (6, 3)]
    before = snapshot(out_dir)
    with pytest.raises(ManifestError, match="another env config"):
        begin_segment(out_dir, "WAM-Test", "beef", env_args, seed=5, resume=True)
    assert snapshot(out_dir) == before
    seed, _ = begin_segment(tmp_path / "fresh", "WAM-Test", "cafe", env_args, seed=9, resume=True)
    assert seed == 9, "resuming a directory without a dataset starts one"


def test_shards_end_at_transitions_per_shard_without_an_episode_count(tmp_path):
    lengths = [4, 3, 5, 2, 6, 1, 3]
    write_dataset(tmp_path / "d", lengths, episodes_per_shard=None, transitions_per_shard=7)
    manifest = load_manifest(tmp_path / "d")
    # a shard ends with the episode that brings it to 7 transitions or more
    assert [s["episode_lengths"] for s in manifest["shards"]] == [[4, 3], [5, 2], [6, 1], [3]]
