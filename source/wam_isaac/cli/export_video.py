"""``wam export-video``: a video (MP4 or GIF) of chosen episodes' camera frames from a dataset.

The episodes play one after the other in the order given, each from its first step to its final frame (the state
after its last action); a depth key (``obs/depth``) is shown as grey levels, near bright. Frames are enlarged
``--scale`` times (nearest neighbour). Example::

    wam export-video --dataset runs/data --episodes 0,3 --out runs/episodes.mp4
"""

from __future__ import annotations

import argparse

from .common import positive_int
from .errors import UsageError

DEFAULT_FPS = 25.0
"""Frames per second: the camera tasks' control rate (0.04 s per step)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-video",
        help="write an MP4 or GIF of chosen episodes' camera frames",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dataset", required=True, help="dataset directory (holding manifest.json)")
    parser.add_argument("--episodes", required=True, help="comma-separated episode ids, e.g. 0,3")
    parser.add_argument("--out", required=True, help="video file to write, .mp4 or .gif")
    parser.add_argument("--key", default=None, help="frame key (default: the dataset's RGB frame key)")
    parser.add_argument("--fps", type=float, default=DEFAULT_FPS, help="frames per second")
    parser.add_argument("--scale", type=positive_int, default=4, help="enlargement of each frame (nearest neighbour)")
    parser.set_defaults(run=run)


def parse_episodes(text: str) -> list[int]:
    """``"0,3"`` -> ``[0, 3]``; a one-line :class:`UsageError` for anything else."""
    try:
        episodes = [int(part) for part in text.split(",")]
    except ValueError:
        raise UsageError(f"--episodes '{text}' must be comma-separated episode ids, e.g. 0,3") from None
    return episodes


def run(args: argparse.Namespace, extra: list[str]) -> int:
    import numpy as np

    from ..data import DatasetError, DatasetReader
    from ..data.frames import frame_keys, is_depth_frame
    from ..data.specs import KeySpec
    from ..evaluation.video import check_video_path, depth_to_frames, write_video

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    episodes = parse_episodes(args.episodes)
    if args.fps <= 0:
        raise UsageError(f"--fps {args.fps} must be positive")
    try:
        out = check_video_path(args.out)
    except ValueError as error:
        raise UsageError(f"--out: {error}") from None
    try:
        reader = DatasetReader(args.dataset)
    except (DatasetError, FileNotFoundError) as error:
        raise UsageError(f"cannot read dataset '{args.dataset}': {error}") from None
    with reader:
        key = args.key or next(iter(frame_keys(reader.manifest["keys"])), None)
        keys = frame_keys(reader.manifest["keys"], depth=True)
        if key not in keys:
            raise UsageError(f"{args.dataset} has no frames under {key!r}; its frame keys: {keys or 'none'}")
        missing = [episode for episode in episodes if episode not in reader.episodes]
        if missing:
            ids = list(reader.episodes)
            held = f"{ids[0]}..{ids[-1]}" if ids else "none"
            raise UsageError(f"episode {missing[0]} is not in {args.dataset} (its episode ids: {held})")
        clips = []
        for episode in episodes:
            record = reader.record(episode)
            frames = reader.rows(episode, key)
            final = reader.final_column(record.shard, key)
            if final is not None:
                row = list(sorted(i for i, r in reader.episodes.items() if r.shard == record.shard)).index(episode)
                frames = np.concatenate([frames, final[row : row + 1]])
            clips.append(frames)
    frames = np.concatenate(clips)
    if is_depth_frame(KeySpec.from_json(reader.manifest["keys"][key])):
        frames = depth_to_frames(frames)
    write_video(frames, out, args.fps, args.scale)
    print(f"[wam] export-video: {len(frames)} frames of {len(episodes)} episode(s) ({key}) -> {out}")
    return 0
