"""The depth observation of the camera tasks: Newton's distance to the image plane, as int16 millimetres.

Stored in datasets beside the RGB frame as a depth frame (:mod:`wam_isaac.data.frames`): integers compress well and
1 mm resolves the scene; int16 rather than uint16 because torch cannot index-assign uint16 tensors (what an episode
collector does), and 32.767 m is far beyond the camera's 5 m far plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv

DEPTH_DATA_TYPE = "distance_to_image_plane"
"""The camera output the depth frame is made from: distance along the optical axis [m]; 0 where a ray misses (Newton
writes 0 for misses and beyond the far plane)."""

MAX_DEPTH_MM = torch.iinfo(torch.int16).max
"""Largest storable depth [mm]."""


def depth_mm(env: ManagerBasedEnv, sensor_cfg: SceneEntityCfg = SceneEntityCfg("camera")) -> torch.Tensor:
    """Distance to the image plane [mm], rounded, int16, shape (num_envs, height, width, 1); 0 where nothing was hit."""
    depth = env.scene[sensor_cfg.name].data.output[DEPTH_DATA_TYPE].torch
    depth = torch.nan_to_num(depth, nan=0.0, posinf=0.0, neginf=0.0)
    return (depth * 1000.0).round().clamp(0, MAX_DEPTH_MM).to(torch.int16)
