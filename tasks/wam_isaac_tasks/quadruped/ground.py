"""A flat ground authored in place: an infinite collision plane (``UsdGeom.Plane``), no file to load.

Isaac Lab's :class:`~isaaclab.sim.GroundPlaneCfg` references a USD on the remote asset server, which no machine of
this project can reach. A large box would do, but Newton imports a ``UsdGeom.Plane`` collider as an analytic plane,
for which MuJoCo-Warp has closed-form sphere/capsule/box contacts: measured about 2x cheaper per physics step than
the generic convex box-vs-shape tests a ground box needs.
"""

from __future__ import annotations

from collections.abc import Callable

from pxr import Usd

from isaaclab.sim.spawners.shapes.shapes import spawn_geom_from_prim_type
from isaaclab.sim.spawners.shapes.shapes_cfg import ShapeCfg
from isaaclab.sim.utils import clone
from isaaclab.utils import configclass


@clone
def spawn_collision_plane(
    prim_path: str,
    cfg: CollisionPlaneCfg,
    translation: tuple[float, float, float] | None = None,
    orientation: tuple[float, float, float, float] | None = None,
    **kwargs,
) -> Usd.Prim:
    """Create a static, Z-up ``UsdGeom.Plane`` collider (infinite for physics; ``cfg.size`` is its visual extent)."""
    attributes = {"axis": "Z", "width": cfg.size[0], "length": cfg.size[1]}
    return spawn_geom_from_prim_type(prim_path, cfg, "Plane", attributes, translation, orientation)


@configclass
class CollisionPlaneCfg(ShapeCfg):
    """A static ground plane through the spawn position, normal +Z. Leave ``rigid_props`` unset (static)."""

    func: Callable | str = spawn_collision_plane

    size: tuple[float, float] = (200.0, 200.0)
    """Visual extent of the plane [m] (x, y); the collision plane is infinite."""
