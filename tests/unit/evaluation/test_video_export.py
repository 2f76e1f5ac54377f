"""``wam export-video`` on a small written dataset: the video holds the chosen episodes' frames in the order given,
each followed by its final frame; depth frames come out as grey levels; a bad episode id, key or file type is a
one-line error with exit code 2 and nothing written."""

from __future__ import annotations

import numpy as np
import pytest

from wam_isaac.cli import main
from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.evaluation.video import depth_to_frames, read_video

FRAME = (8, 10, 3)
DEPTH = (8, 10, 1)
LENGTHS = (4, 2, 3)
SPECS = {
    "obs/camera": KeySpec(FRAME, "uint8"),
    "obs/depth": KeySpec(DEPTH, "int16", unit="mm"),
    "actions": KeySpec((2,), "float32"),
    "dones": KeySpec((), "bool"),
}


def _episode(episode_id: int, length: int) -> Episode:
    """Frames whose every pixel is one grey level naming (episode, step): 40 * episode + 5 * step (the final frame:
    step = length); depth (1000 + that level) mm."""
    levels = 40 * episode_id + 5 * np.arange(length + 1)
    frames = np.broadcast_to(levels[:, None, None, None], (length + 1, *FRAME)).astype(np.uint8)
    depth = np.broadcast_to(1000 + levels[:, None, None, None], (length + 1, *DEPTH)).astype(np.int16)
    data = {"obs/camera": frames[:-1], "obs/depth": depth[:-1], "actions": np.zeros((length, 2), np.float32)}
    data["dones"] = np.arange(length) == length - 1
    final = {"obs/camera": frames[-1], "obs/depth": depth[-1]}
    return Episode(data, episode_id, 0, False, {}, {"budget_end": 0}, final=final)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("video") / "d"
    episodes = [_episode(i, length) for i, length in enumerate(LENGTHS)]
    with DatasetWriter(out, "WAM-Test", "cafe", SPECS, episodes_per_shard=2) as writer:
        writer.write_many(episodes)
    return out, episodes


def _export(dataset_dir, *args: str) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["export-video", "--dataset", str(dataset_dir), *args])
    return exit_info.value.code


def test_chosen_episodes_in_order_each_to_its_final_frame(dataset, tmp_path):
    out, episodes = dataset
    assert _export(out, "--episodes", "2,0", "--out", str(tmp_path / "v.gif"), "--scale", "1") == 0
    decoded = read_video(tmp_path / "v.gif")
    expected = np.concatenate(
        [np.concatenate([episodes[i].data["obs/camera"], episodes[i].final["obs/camera"][None]]) for i in (2, 0)]
    )
    np.testing.assert_array_equal(decoded, expected)  # episode 2 lives in the second shard: both shards are read


def test_depth_frames_are_grey_levels(dataset, tmp_path):
    out, episodes = dataset
    assert _export(out, "--episodes", "1", "--key", "obs/depth", "--out", str(tmp_path / "d.gif"), "--scale", "1") == 0
    depth = np.concatenate([episodes[1].data["obs/depth"], episodes[1].final["obs/depth"][None]])
    expected = depth_to_frames(depth)
    np.testing.assert_array_equal(read_video(tmp_path / "d.gif")[..., :1], expected)
    assert expected[0, 0, 0, 0] > expected[-1, 0, 0, 0]  # deeper is darker


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--episodes", "0,7"], "episode 7 is not in"),
        (["--episodes", "0,x"], "must be comma-separated episode ids"),
        (["--episodes", "0", "--key", "obs/nothing"], "has no frames under 'obs/nothing'"),
    ],
)
def test_bad_input_is_one_line_exit_2_nothing_written(dataset, tmp_path, capsys, args, message):
    out, _ = dataset
    assert _export(out, *args, "--out", str(tmp_path / "v.mp4")) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not list(tmp_path.iterdir())


def test_a_bad_file_type_is_one_line_exit_2(dataset, tmp_path, capsys):
    out, _ = dataset
    assert _export(out, "--episodes", "0", "--out", str(tmp_path / "v.avi")) == 2
    assert "must end in .mp4 or .gif" in capsys.readouterr().err


def test_inspect_reports_the_frames(dataset, capsys):
    import json

    out, _ = dataset
    with pytest.raises(SystemExit) as exit_info:
        main(["inspect", "--json", str(out)])
    assert exit_info.value.code == 0
    frames = json.loads(capsys.readouterr().out)["frames"]
    count = sum(LENGTHS) + len(LENGTHS)  # every step and every episode's final frame
    assert frames["obs/camera"] == {**frames["obs/camera"], "frames": count, "height": 8, "width": 10, "channels": 3}
    assert frames["obs/camera"]["depth"] is False and frames["obs/depth"]["depth"] is True
    assert frames["obs/depth"]["raw_bytes"] == count * 8 * 10 * 2  # int16
    # flat synthetic frames compress: stored below raw, but not nothing
    assert 0 < frames["obs/camera"]["stored_bytes"] < frames["obs/camera"]["raw_bytes"]


def test_depth_frames_are_chunked_one_per_frame(dataset):
    import h5py

    out, _ = dataset
    with h5py.File(next(out.glob("shard_*.h5"))) as file:
        assert file["steps/obs/depth"].chunks == (1, *DEPTH) and file["steps/obs/depth"].dtype == np.int16
        assert file["steps/obs/camera"].chunks == (1, *FRAME)
