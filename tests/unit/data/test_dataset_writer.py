"""DatasetWriter: roundtrip equality, manifest and layout, output-directory checks, bounded queue, failures."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from synthetic_episodes import (
    KEY_SPECS,
    FullDiskSink,
    StalledSink,
    assert_episodes_equal,
    make_episode,
    write_dataset,
)

from wam_isaac.data.episode import Episode, PackedEpisode, pack_episode, unpack_episode
from wam_isaac.data.errors import DatasetExistsError, DatasetNotWritableError, WriterError
from wam_isaac.data.manifest import load_manifest, shard_episode_ids
from wam_isaac.data.reader import iter_episodes, read_episode, verify
from wam_isaac.data.writer import DatasetWriter


def snapshot(directory: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(directory.iterdir())}


def test_roundtrip_equals_every_array_and_attribute(dataset):
    out_dir, episodes = dataset
    read = list(iter_episodes(out_dir))
    assert [episode_id for episode_id, _ in read] == [0, 2, 1, 3, 4]  # shard by shard: 0 and 2, 1 and 3, 4
    for episode_id, actual in read:
        assert_episodes_equal(actual, episodes[episode_id])
    assert_episodes_equal(read_episode(out_dir, 3), episodes[3])


def test_manifest_counts_and_checksums_match_the_files(dataset):
    out_dir, episodes = dataset
    manifest = load_manifest(out_dir)
    assert [s["name"] for s in manifest["shards"]] == ["shard_00000.h5", "shard_00001.h5", "shard_00002.h5"]
    # two writing processes (the default) deal the episodes out in turn: writer 0 gets 0, 2, 4 and writes shards 0
    # and 2; writer 1 gets 1, 3 and writes shard 1
    assert [(s["episodes"], s["transitions"], s["episode_ids"]) for s in manifest["shards"]] == [
        (2, 12, [0, 2]), (2, 13, [1, 3]), (1, 1, [4])]  # fmt: skip
    assert [s["episode_lengths"] for s in manifest["shards"]] == [[7, 5], [3, 10], [1]]
    assert manifest["totals"] == {"episodes": 5, "transitions": 26, "successes": 3, "dropped_episodes": 0}
    for shard in manifest["shards"]:
        assert shard["sha256"] == hashlib.sha256((out_dir / shard["name"]).read_bytes()).hexdigest()
    assert manifest["complete"] is True and manifest["task_id"] == "WAM-Test" and manifest["env_config_hash"] == "cafe"
    assert manifest["keys"]["states/joint_pos"] == {"group": "states", "shape": [2], "dtype": "float64", "unit": "rad",
                                                    "description": ""}  # fmt: skip
    assert manifest["keys"]["obs/policy"]["group"] == "obs" and manifest["keys"]["labels/contact"]["dtype"] == "bool"
    assert manifest["dr_keys"] == {"robot/body_mass": {"shape": [2], "dtype": "float32"},
                                   "action/joint_pos/latency": {"shape": [], "dtype": "int64"}}  # fmt: skip
    assert manifest["created_with"]["wam_isaac"] and manifest["schema_version"] == 2
    assert sorted(path.name for path in out_dir.iterdir()) == [
        "manifest.json",
        *[s["name"] for s in manifest["shards"]],
    ]


def test_hdf5_layout_is_robomimic_like_chunked_and_compressed(dataset):
    out_dir, episodes = dataset
    with h5py.File(out_dir / "shard_00001.h5", "r") as file:
        data = file["data"]
        assert sorted(data) == ["demo_1", "demo_3"]
        assert (
            data.attrs["total"] == 13
            and data.attrs["shard_index"] == 1
            and json.loads(data.attrs["env_args"])["env_name"] == "WAM-Test"
        )
        demo = data["demo_3"]
        attrs = {name: value for name, value in demo.attrs.items() if not name.startswith("dr/")}
        assert attrs == {"num_samples": 10, "seed": 1003, "success": False, "env_id": 3, "timeout": True}
        assert sorted(name for name in demo.attrs if name.startswith("dr/")) == [
            "dr/action/joint_pos/latency", "dr/robot/body_mass"]  # fmt: skip
        assert sorted(demo) == ["actions", "dones", "labels", "obs", "rewards", "states"]
        policy = demo["obs/policy"]
        assert policy.shape == (10, 3) and policy.compression == "gzip" and policy.chunks == (10, 3)
        np.testing.assert_array_equal(demo.attrs["dr/robot/body_mass"], episodes[3].dr["robot/body_mass"])


def test_dropped_episodes_are_counted_in_the_manifest(tmp_path):
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS, compression="lzf") as writer:
        writer.write(make_episode(0, 4))
        writer.add_dropped(2)
        writer.add_dropped(1)
    manifest = load_manifest(tmp_path / "d")
    assert manifest["totals"]["dropped_episodes"] == 3 and manifest["totals"]["episodes"] == 1
    with h5py.File(tmp_path / "d" / "shard_00000.h5", "r") as file:
        assert file["data/demo_0/actions"].compression == "lzf"


def test_non_empty_dir_without_overwrite_raises_and_leaves_files_untouched(dataset):
    out_dir, _ = dataset
    before = snapshot(out_dir)
    with pytest.raises(DatasetExistsError, match="not empty.*overwrite"):
        DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS)
    assert snapshot(out_dir) == before


def test_overwrite_keeps_old_dataset_on_bad_input_or_failure_before_data(dataset):
    out_dir, _ = dataset
    before = snapshot(out_dir)
    with pytest.raises(ValueError, match="episodes_per_shard"):
        DatasetWriter(out_dir, "WAM-Test", "cafe", KEY_SPECS, overwrite=True, episodes_per_shard=0)
    with pytest.raises(RuntimeError, match="env failed"), DatasetWriter(out_dir, "W", "h", KEY_SPECS, overwrite=True):
        raise RuntimeError("env failed to start")
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


class StalledWriter(DatasetWriter):
    sink_class = StalledSink


class FullDiskWriter(DatasetWriter):
    sink_class = FullDiskSink


@pytest.mark.parametrize("num_writers", [1, 2])
def test_producer_blocks_when_queue_is_full(tmp_path, monkeypatch, num_writers):
    release = tmp_path / "release"
    monkeypatch.setenv("WAM_TEST_RELEASE", str(release))  # read by the writing processes: a stalled disk
    writer = StalledWriter(
        tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS, max_queued_episodes=3, num_writers=num_writers
    )
    produced = []

    def produce():
        for i in range(6):
            writer.write(make_episode(i, 2))
            produced.append(i)

    producer = threading.Thread(target=produce)
    producer.start()
    deadline = time.monotonic() + 30
    while len(produced) < 3 + num_writers and time.monotonic() < deadline:
        time.sleep(0.01)
    producer.join(timeout=0.3)
    # one episode held by each stalled writing process, three in flight: the next write cannot return
    assert producer.is_alive() and produced == list(range(3 + num_writers))
    assert writer.max_queued_episodes == 3 and writer._free_slots.get_value() == 0
    release.touch()
    producer.join()
    writer.close()
    assert load_manifest(tmp_path / "d")["totals"]["episodes"] == 6


def test_exception_mid_shard_deletes_temp_shard_and_keeps_manifest_truthful(tmp_path):
    out_dir = tmp_path / "d"
    with pytest.raises(KeyboardInterrupt), DatasetWriter(out_dir, "W", "h", KEY_SPECS, episodes_per_shard=2) as writer:
        writer.write_many(make_episode(i, 3) for i in range(3))
        # writer 0 publishes shard 0 (episodes 0 and 2); episode 1 waits in writer 1's temporary shard 1
        while not ((out_dir / "shard_00000.h5").exists() and (out_dir / ".shard_00001.h5.tmp").exists()):
            time.sleep(0.01)
        raise KeyboardInterrupt
    manifest = load_manifest(out_dir)
    assert sorted(path.name for path in out_dir.iterdir()) == ["manifest.json", "shard_00000.h5"]
    assert [s["name"] for s in manifest["shards"]] == ["shard_00000.h5"] and manifest["complete"] is False
    assert verify(out_dir) == []


def test_writing_process_failure_is_raised_to_the_caller(tmp_path):
    writer = FullDiskWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS)
    writer.write(make_episode(0, 2))
    with pytest.raises(WriterError, match="No space left") as error:
        writer.close()
    assert isinstance(error.value.__cause__, OSError)
    assert not list((tmp_path / "d").glob("*.tmp"))


def test_episode_not_matching_key_specs_is_rejected(tmp_path):
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS) as writer:
        episode = make_episode(0, 3)
        episode.data["actions"] = episode.data["actions"].astype(np.float64)
        with pytest.raises(ValueError, match="actions.*float64.*expected float32"):
            writer.write(episode)
        writer.write(make_episode(1, 3))
        other_dr = make_episode(2, 3)
        other_dr.dr.pop("robot/body_mass")
        with pytest.raises(ValueError, match="DR parameters"):
            writer.write(other_dr)


def test_packed_episode_unpacks_to_equal_arrays_and_attributes():
    episode = make_episode(5, 9)
    episode.data["states/empty"] = np.zeros((9, 0), np.float32)
    unpacked = unpack_episode(pack_episode(episode))
    assert_episodes_equal(unpacked, episode)
    assert unpacked.dr["action/joint_pos/latency"].shape == () and unpacked.data["states/empty"].shape == (9, 0)


def test_packing_roundtrips_views_of_any_layout():
    rng = np.random.default_rng(0)
    block = rng.standard_normal((9, 10)).astype(np.float32)  # one episode's float32 block, as the collector makes
    flags = rng.integers(0, 2, (9, 3)).astype(bool)
    big = rng.standard_normal((9, 1000))
    data = {
        "obs/policy": block[:, 0:3],
        "states/quat": block[:, 3:7].reshape(9, 2, 2),
        "rewards": block[:, 7],
        "labels/pair": block[:, 8:10],
        "dones": flags[:, 0],
        "labels/flags": flags[:, 1:],
        "labels/small_view": big[:, 5:7],
        "labels/reversed": np.arange(18, dtype=np.int64).reshape(9, 2)[::-1],
        "states/empty": np.zeros((9, 0), np.float32),
    }
    episode = Episode(data, env_id=4, seed=7, success=True, dr={"robot/body_mass": np.float32([1.5, 2.0])})
    packed = PackedEpisode(episode)
    assert packed.nbytes == len(packed.header) + sum(a.nbytes for a in (*data.values(), *episode.dr.values()))
    unpacked = unpack_episode(pack_episode(episode))
    assert_episodes_equal(unpacked, episode)
    assert unpacked.data["states/quat"].shape == (9, 2, 2) and unpacked.data["rewards"].shape == (9,)


def test_two_writing_processes_publish_every_shard_and_episode(tmp_path):
    lengths = [1 + (5 * i) % 9 for i in range(23)]
    episodes = write_dataset(tmp_path / "d", lengths, episodes_per_shard=2, num_writers=2)
    manifest = load_manifest(tmp_path / "d")
    # writer 0: episodes 0, 2, ..., 22 in shards 0, 2, ..., 10; writer 1: episodes 1, 3, ..., 21 in shards 1, ..., 11
    assert [shard["name"] for shard in manifest["shards"]] == [f"shard_{i:05d}.h5" for i in range(12)]
    assert manifest["shards"][10]["episode_ids"] == [20, 22] and manifest["shards"][11]["episode_ids"] == [21]
    assert manifest["complete"] is True and verify(tmp_path / "d") == []
    assert manifest["totals"]["episodes"] == 23 and manifest["totals"]["transitions"] == sum(lengths)
    read = dict(iter_episodes(tmp_path / "d"))
    assert sorted(read) == list(range(23))
    for episode_id, episode in read.items():
        assert_episodes_equal(episode, episodes[episode_id])


def test_schema_1_shards_are_read_by_first_episode():
    assert shard_episode_ids({"first_episode": 4, "episodes": 3, "episode_lengths": [1, 2, 3]}) == [4, 5, 6]
    assert shard_episode_ids({"episode_ids": [1, 3], "episodes": 2}) == [1, 3]


def test_writing_processes_report_their_own_peak_memory_not_the_callers(tmp_path):
    ballast = np.ones(512 * 2**20 // 8)  # the caller holds 512 MB when the writing processes are forked and exec'd
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", KEY_SPECS) as writer:
        writer.write_many(make_episode(i, 3) for i in range(4))
    assert len(writer.writer_peak_rss) == 2
    # a writer's ru_maxrss would include the fork of the caller's 512 MB; its own peak is its interpreter and HDF5
    assert all(2**20 < peak < 256 * 2**20 for peak in writer.writer_peak_rss), writer.writer_peak_rss
    del ballast
