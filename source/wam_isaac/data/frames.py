"""Camera frames in datasets: which per-step keys are images, and how they are chunked.

A frame key holds one uint8 image per step, shape (height, width, channels) with 1 (grey, depth as 8 bits), 3 (RGB)
or 4 (RGBA) channels, e.g. ``obs/camera`` of WAM-Push-Cube-Camera, (64, 64, 3). Frames are stored like every other
key (``steps/<key>`` of the columnar shards, gzip through HDF5's deflate filter), but one frame per chunk: a window
read of a few frames decompresses only those frames, and an episode's final frame (``final/<key>``) is compressed
the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .specs import KeySpec

FRAME_CHANNELS = (1, 3, 4)
"""Channel counts of an image key: grey, RGB, RGBA."""


def is_frame(spec: KeySpec) -> bool:
    """Whether a key holds camera frames: uint8 of shape (height, width, channels), channels in
    :data:`FRAME_CHANNELS`."""
    return spec.dtype == "uint8" and len(spec.shape) == 3 and spec.shape[2] in FRAME_CHANNELS


def frame_keys(keys: Mapping[str, Any]) -> list[str]:
    """The frame keys among a manifest's ``keys`` entries (``{key: {"shape", "dtype", ...}}``) or key specs, sorted."""
    specs = {key: value if isinstance(value, KeySpec) else KeySpec.from_json(value) for key, value in keys.items()}
    return sorted(key for key, spec in specs.items() if is_frame(spec))
