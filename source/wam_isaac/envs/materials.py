"""Material randomization for bodies made of one material but collided through several shapes.

Isaac Lab's :class:`~isaaclab.envs.mdp.randomize_rigid_body_material` draws a friction coefficient for every
collision shape independently (on Newton). A body built from several shapes (a cube whose corners are spheres, see
``wam_isaac_assets.builders.cube``) would then have a different friction at each corner, and a pushed cube would yaw
for no physical reason. :class:`randomize_asset_friction` draws one coefficient per env and gives it to every shape
of the asset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import isaaclab.envs.mdp as mdp

from .observations import newton_shape_friction

if TYPE_CHECKING:
    import torch

    from isaaclab.envs import ManagerBasedEnv
    from isaaclab.managers import SceneEntityCfg


class randomize_asset_friction(mdp.randomize_rigid_body_material):
    """Isaac Lab's material randomization (same parameters), with one friction coefficient per env shared by every
    collision shape of the asset: the first shape's draw. Newton backend; on other backends the shapes keep their
    own draws."""

    def __call__(
        self,
        env: ManagerBasedEnv,
        env_ids: torch.Tensor | slice | None,
        static_friction_range: tuple[float, float],
        dynamic_friction_range: tuple[float, float],
        restitution_range: tuple[float, float],
        num_buckets: int,
        asset_cfg: SceneEntityCfg,
        make_consistent: bool = False,
    ) -> None:
        super().__call__(
            env,
            env_ids,
            static_friction_range,
            dynamic_friction_range,
            restitution_range,
            num_buckets,
            asset_cfg,
            make_consistent,
        )
        friction = newton_shape_friction(env, self.asset)  # (num_envs, num_shapes), a view of Newton's model
        if friction is None:
            return
        rows = slice(None) if env_ids is None or isinstance(env_ids, slice) else env_ids.to(friction.device)
        friction[rows] = friction[rows, :1].expand(-1, friction.shape[1]).clone()
