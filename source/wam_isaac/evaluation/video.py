"""Videos people can watch: camera frames to MP4 (H.264 through imageio-ffmpeg's bundled ffmpeg, nothing to install
beside the wheel) or GIF (Pillow), a predicted-vs-true side-by-side writer for pixel models, and a recorder of one
env's camera during a rollout.

Frames are uint8 arrays of shape (T, H, W, 3) (or (T, H, W, 1): grey, repeated to RGB). Small simulator frames are
enlarged ``scale`` times (nearest neighbour: the pixels stay sharp) before encoding; MP4 is encoded near-losslessly
(constant quality ``crf`` 12, 4:2:0 chroma), so a decoded frame differs from the written one by a few levels at most
except on sharp colour edges (chroma is stored at half resolution).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

VIDEO_SUFFIXES = (".mp4", ".gif")
"""File types :func:`write_video` writes."""

SEPARATOR_PX = 2
"""Width of the white column between the panels of a side-by-side video [px, before scaling]."""


def check_video_path(path: str | os.PathLike) -> Path:
    """``path`` as a :class:`Path` if it ends in a written video type, else a one-line :class:`ValueError`."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video '{path}' must end in {' or '.join(VIDEO_SUFFIXES)}")
    return path


def as_rgb_frames(frames: np.ndarray, what: str = "frames") -> np.ndarray:
    """``frames`` checked as uint8 (T, H, W, 3 or 1), grey repeated to RGB; a one-line :class:`ValueError` otherwise."""
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] not in (1, 3) or not len(frames):
        raise ValueError(f"{what} must be uint8 of shape (T >= 1, H, W, 3 or 1), got {frames.dtype} {frames.shape}")
    return np.repeat(frames, 3, axis=-1) if frames.shape[-1] == 1 else frames


def depth_to_frames(depth_mm: np.ndarray) -> np.ndarray:
    """Depth frames (int16 [mm], (T, H, W, 1)) as grey uint8 frames for viewing: the nearest depth present is white
    (255), the farthest dark grey (32), linearly between; missed pixels (0) are black."""
    depth = np.asarray(depth_mm, dtype=np.float32)
    hit = depth > 0
    if not hit.any():
        return np.zeros(depth.shape, dtype=np.uint8)
    near, far = float(depth[hit].min()), float(depth[hit].max())
    grey = 255.0 - (255.0 - 32.0) * (depth - near) / max(far - near, 1.0)
    return np.where(hit, grey + 0.5, 0.0).astype(np.uint8)


def write_video(frames: np.ndarray, path: str | os.PathLike, fps: float, scale: int = 1) -> Path:
    """Write ``frames`` (uint8 (T, H, W, 3 or 1)) to ``path`` (.mp4 or .gif) at ``fps`` frames per second, each
    enlarged ``scale`` times; written to a temporary file renamed over ``path`` (never half-written). Returns the
    path. A GIF merges identical consecutive frames into one longer frame (Pillow), so it may decode to fewer
    frames than written; an MP4 keeps every frame."""
    path = check_video_path(path)
    frames = as_rgb_frames(frames)
    if scale < 1 or fps <= 0:
        raise ValueError(f"scale must be >= 1 and fps > 0, got scale {scale}, fps {fps}")
    if scale > 1:
        frames = frames.repeat(scale, axis=1).repeat(scale, axis=2)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        if path.suffix.lower() == ".gif":
            _write_gif(frames, tmp, fps)
        else:
            _write_mp4(frames, tmp, fps)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_mp4(frames: np.ndarray, path: Path, fps: float) -> None:
    import imageio.v2 as imageio

    # H.264 in 4:2:0 needs even sides: pad the last row / column by repeating it
    pad_h, pad_w = frames.shape[1] % 2, frames.shape[2] % 2
    if pad_h or pad_w:
        frames = np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    writer = imageio.get_writer(
        path,
        format="FFMPEG",
        fps=fps,
        codec="libx264",
        pixelformat="yuv420p",
        macro_block_size=1,
        quality=None,
        ffmpeg_params=["-crf", "12", "-preset", "medium"],
        ffmpeg_log_level="error",
    )
    try:
        for frame in frames:
            writer.append_data(frame)
    finally:
        writer.close()


def _write_gif(frames: np.ndarray, path: Path, fps: float) -> None:
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    duration_ms = max(20, round(1000.0 / fps))  # GIF delays are centiseconds; browsers clamp below 20 ms
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=duration_ms, loop=0)


def read_video(path: str | os.PathLike) -> np.ndarray:
    """Every frame of a video file, uint8 (T, H, W, 3)."""
    import imageio.v3 as iio

    path = Path(path)
    frames = iio.imread(path, index=None, plugin="pillow" if path.suffix.lower() == ".gif" else "FFMPEG")
    frames = np.asarray(frames)
    return frames[..., :3] if frames.shape[-1] == 4 else frames


def side_by_side(panels: Sequence[np.ndarray], separator_px: int = SEPARATOR_PX) -> np.ndarray:
    """Frames of equal shape (T, H, W, 3 or 1) placed left to right with a white column between them."""
    panels = [as_rgb_frames(panel, f"panel {i}") for i, panel in enumerate(panels)]
    if len({panel.shape for panel in panels}) != 1:
        raise ValueError(f"side-by-side panels must have one shape, got {[panel.shape for panel in panels]}")
    count, height = panels[0].shape[:2]
    gap = np.full((count, height, separator_px, 3), 255, dtype=np.uint8)
    parts = [part for panel in panels for part in (panel, gap)][:-1]
    return np.concatenate(parts, axis=2)


def write_side_by_side(
    true_frames: np.ndarray, pred_frames: np.ndarray, path: str | os.PathLike, fps: float, scale: int = 4
) -> Path:
    """A video of true (left) and predicted (right) frames, uint8 (T, H, W, 3) each, frame t beside frame t; written
    like :func:`write_video`. Returns the path."""
    true_frames = as_rgb_frames(true_frames, "true_frames")
    pred_frames = as_rgb_frames(pred_frames, "pred_frames")
    if true_frames.shape != pred_frames.shape:
        raise ValueError(f"true_frames {true_frames.shape} and pred_frames {pred_frames.shape} must have one shape")
    return write_video(side_by_side([true_frames, pred_frames]), path, fps, scale)


class CameraRecorder:
    """Collects one env's camera frames during a rollout: call it with each step's observation dict; frames of
    ``obs[group][env_index]`` are copied to the host until ``max_frames`` are held.

    Args:
        env_index: which env to record.
        max_frames: frames to keep (later calls are ignored).
        group: the observation group holding the frame (uint8 (num_envs, H, W, 3)).
    """

    def __init__(self, env_index: int = 0, max_frames: int = 200, group: str = "camera") -> None:
        self.env_index, self.max_frames, self.group = env_index, max_frames, group
        self.frames: list[np.ndarray] = []

    def __call__(self, obs: dict) -> None:
        if len(self.frames) < self.max_frames:
            self.frames.append(obs[self.group][self.env_index].cpu().numpy())

    def write(self, path: str | os.PathLike, fps: float, scale: int = 4) -> Path:
        """Write the frames held (see :func:`write_video`)."""
        if not self.frames:
            raise ValueError("no camera frame was recorded")
        return write_video(np.stack(self.frames), path, fps, scale)
