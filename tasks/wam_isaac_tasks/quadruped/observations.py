"""Privileged observation terms of the quadruped task that :mod:`wam_isaac.envs.observations` does not cover:
the friction coefficient domain randomization gave each foot, and the contact force each foot measures."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
import warp as wp

from isaaclab.managers import ManagerTermBase, ObservationTermCfg, SceneEntityCfg

if TYPE_CHECKING:
    from isaaclab.assets import Articulation
    from isaaclab.envs import ManagerBasedEnv
    from isaaclab.sensors import ContactSensor


class body_friction(ManagerTermBase):
    """Friction coefficient of the selected bodies' collision shapes [1], shape (num_envs, num_shapes).

    Reads the coefficients the solver uses (Newton's per-shape ``shape_material_mu``), so the value reflects
    ``randomize_rigid_body_material`` at startup. Newton backend only: other backends raise at construction.
    """

    def __init__(self, cfg: ObservationTermCfg, env: ManagerBasedEnv):
        super().__init__(cfg, env)
        asset_cfg: SceneEntityCfg = cfg.params["asset_cfg"]
        asset: Articulation = env.scene[asset_cfg.name]
        manager = env.sim.physics_manager
        if not hasattr(manager, "get_model"):
            raise NotImplementedError(f"body_friction reads Newton's model; the physics manager is {type(manager)}")
        # (num_envs, num_shapes) view onto the model's friction array: reading it costs no copy
        self._friction = wp.to_torch(asset._root_view.get_attribute("shape_material_mu", manager.get_model())[:, 0])
        # the view's shape axis follows the model's shape order, so select each body's own shapes (as the event does)
        body_ids = asset_cfg.body_ids
        if isinstance(body_ids, slice):
            body_ids = list(range(asset.num_bodies))[body_ids]
        backend_body_ids = asset.map_body_ids_to_backend(body_ids)
        shapes = [shape for body in backend_body_ids for shape in asset._root_view.body_shapes[body]]
        self._shape_ids = torch.tensor(shapes, dtype=torch.long, device=self._friction.device)

    def __call__(self, env: ManagerBasedEnv, asset_cfg: SceneEntityCfg) -> torch.Tensor:
        return self._friction[:, self._shape_ids].to(env.device)


def contact_forces(env: ManagerBasedEnv, sensor_cfg: SceneEntityCfg) -> torch.Tensor:
    """Norm of the net contact force on each selected body [N], shape (num_envs, num_bodies)."""
    sensor: ContactSensor = env.scene.sensors[sensor_cfg.name]
    return sensor.data.net_forces_w.torch[:, sensor_cfg.body_ids].norm(dim=-1)
