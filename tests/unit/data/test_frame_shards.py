"""Camera frames in shards: stored byte for byte (steps and the final frame), one gzip-compressed chunk per frame,
read back by :class:`DatasetReader` at any row."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from wam_isaac.data import DatasetReader, load_manifest
from wam_isaac.data.episode import Episode
from wam_isaac.data.frames import frame_keys, is_frame
from wam_isaac.data.shards import chunk_rows
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter

FRAME = (16, 12, 3)
SPECS = {"obs/camera": KeySpec(FRAME, "uint8"), "actions": KeySpec((2,), "float32"), "dones": KeySpec((), "bool")}


def _frames(seed: int, count: int) -> np.ndarray:
    """Random frames with a flat region (compressible), shape (count, *FRAME)."""
    frames = np.random.default_rng(seed).integers(0, 256, size=(count, *FRAME), dtype=np.uint8)
    frames[:, : FRAME[0] // 2] = 200
    return frames


def _episode(episode_id: int, length: int) -> Episode:
    frames = _frames(episode_id, length + 1)  # the last one is the final frame, after the last action
    data = {"obs/camera": frames[:-1], "actions": np.zeros((length, 2), np.float32)}
    data["dones"] = np.arange(length) == length - 1
    return Episode(data, episode_id, 0, False, {}, {"budget_end": 0}, final={"obs/camera": frames[-1]})


def test_only_uint8_images_are_frames():
    assert is_frame(KeySpec((64, 64, 3), "uint8")) and is_frame(KeySpec((8, 8, 1), "uint8"))
    assert not is_frame(KeySpec((64, 64, 3), "float32"))  # a normalized image is not stored as a frame
    assert not is_frame(KeySpec((64, 64), "uint8")) and not is_frame(KeySpec((4, 4, 5), "uint8"))
    assert chunk_rows(KeySpec((64, 64, 3), "uint8")) == 1
    assert chunk_rows(KeySpec((64, 64, 3), "float32")) == 4  # 256 kB / 48 kB = 5.3, rounded down to a power of two


@pytest.mark.parametrize("compression", ["gzip", None])
def test_frames_round_trip_with_their_final_frame(tmp_path, compression):
    episodes = [_episode(i, length) for i, length in enumerate([10, 3, 7])]
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", SPECS, episodes_per_shard=2, compression=compression) as w:
        w.write_many(episodes)
    manifest = load_manifest(tmp_path / "d")
    assert frame_keys(manifest["keys"]) == ["obs/camera"]
    with DatasetReader(tmp_path / "d") as reader:
        for episode_id, episode in enumerate(episodes):
            read = reader.episode(episode_id)
            np.testing.assert_array_equal(read.data["obs/camera"], episode.data["obs/camera"])
            np.testing.assert_array_equal(read.final["obs/camera"], episode.final["obs/camera"])
            assert read.data["obs/camera"].dtype == np.uint8
            last = episode.num_samples - 1  # a single row read at the episode's last step
            row = reader.rows(episode_id, "obs/camera", last)[0]
            np.testing.assert_array_equal(row, episode.data["obs/camera"][-1])
        shard = reader.record(0).shard
    with h5py.File(tmp_path / "d" / shard) as file:
        steps, final = file["steps/obs/camera"], file["final/obs/camera"]
        assert steps.chunks == (1, *FRAME)
        assert steps.compression == compression and final.compression == compression
        if compression:
            assert final.chunks == (1, *FRAME)
            stored = sum(steps.id.get_chunk_info(i).size for i in range(steps.id.get_num_chunks()))
            assert stored < 0.8 * steps.size  # half of each frame is flat: deflate must shrink it
