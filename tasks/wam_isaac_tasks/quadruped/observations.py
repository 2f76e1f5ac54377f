"""Privileged observation term of the quadruped task that :mod:`wam_isaac.envs.observations` does not cover: the
contact force each foot measures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from isaaclab.managers import SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedEnv
    from isaaclab.sensors import ContactSensor


def contact_forces(env: ManagerBasedEnv, sensor_cfg: SceneEntityCfg) -> torch.Tensor:
    """Norm of the net contact force on each selected body [N], shape (num_envs, num_bodies)."""
    sensor: ContactSensor = env.scene.sensors[sensor_cfg.name]
    return sensor.data.net_forces_w.torch[:, sensor_cfg.body_ids].norm(dim=-1)
