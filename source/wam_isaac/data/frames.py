"""Camera frames in datasets: which per-step keys are images, and how they are chunked.

A frame key holds one uint8 image per step, shape (height, width, channels) with 1 (grey), 3 (RGB) or 4 (RGBA)
channels, e.g. ``obs/camera`` of WAM-Push-Cube-Camera, (64, 64, 3); or one depth image per step, int16 millimetres,
shape (height, width, 1), e.g. ``obs/depth`` of WAM-Push-Cube-Camera-Depth (0 where nothing was hit). Frames are
stored like every other key (``steps/<key>`` of the columnar shards, gzip through HDF5's deflate filter), but one
frame per chunk: a window read of a few frames decompresses only those frames, and an episode's final frame
(``final/<key>``) is compressed the same way.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .specs import KeySpec

FRAME_CHANNELS = (1, 3, 4)
"""Channel counts of an image key: grey, RGB, RGBA."""

DEPTH_DTYPE = "int16"
"""Dtype of a depth frame key: millimetres (1 mm resolution up to 32.767 m)."""


def is_depth_frame(spec: KeySpec) -> bool:
    """Whether a key holds depth frames: int16 millimetres of shape (height, width, 1)."""
    return spec.dtype == DEPTH_DTYPE and len(spec.shape) == 3 and spec.shape[2] == 1


def is_frame(spec: KeySpec) -> bool:
    """Whether a key holds camera frames: uint8 of shape (height, width, channels), channels in
    :data:`FRAME_CHANNELS`, or depth frames (:func:`is_depth_frame`)."""
    rgb = spec.dtype == "uint8" and len(spec.shape) == 3 and spec.shape[2] in FRAME_CHANNELS
    return rgb or is_depth_frame(spec)


def frame_keys(keys: Mapping[str, Any], depth: bool = False) -> list[str]:
    """The image frame keys among a manifest's ``keys`` entries (``{key: {"shape", "dtype", ...}}``) or key specs,
    sorted; with the depth frame keys too if ``depth`` (pixel models take the uint8 images only)."""
    specs = {key: value if isinstance(value, KeySpec) else KeySpec.from_json(value) for key, value in keys.items()}
    return sorted(key for key, spec in specs.items() if is_frame(spec) and (depth or not is_depth_frame(spec)))


def frames_summary(dataset_dir: str | os.PathLike, manifest: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What ``wam inspect`` reports of each frame key: ``{key: {"frames", "height", "width", "channels", "dtype",
    "depth", "stored_bytes", "raw_bytes"}}``: frames stored (every step and every episode's final frame), resolution
    [px], whether it is a depth frame, bytes on disk (the compressed chunks of ``steps/<key>`` and ``final/<key>`` of
    every shard) and uncompressed."""
    import h5py
    import numpy as np

    summary = {}
    for key in frame_keys(manifest["keys"], depth=True):
        spec = KeySpec.from_json(manifest["keys"][key])
        frames = stored = 0
        for shard in manifest["shards"]:
            with h5py.File(Path(dataset_dir) / shard["name"], "r") as file:
                for group in ("steps", "final"):
                    if group in file and key in file[group]:
                        frames += file[group][key].shape[0]
                        stored += file[group][key].id.get_storage_size()
        height, width, channels = spec.shape
        raw = frames * height * width * channels * np.dtype(spec.dtype).itemsize
        summary[key] = {"frames": frames, "height": height, "width": width, "channels": channels, "dtype": spec.dtype,
                        "depth": is_depth_frame(spec), "stored_bytes": int(stored), "raw_bytes": int(raw)}  # fmt: skip
    return summary
