"""The pushed cube: a rigid body whose collision geometry is a box for the pusher's tip and eight corner spheres that
carry it on the table (a box with rounded corners, as a moulded plastic cube has).

Why not one box. MuJoCo's box-box colliders both fail a cube lying on a table top (see
:mod:`wam_isaac.envs.physics`): the native convex one (GJK/EPA) keeps a contact polygon only for faces parallel
within 0.09 degrees, so a slightly tilted cube stands on an edge and rocks; the primitive one (``mjc_BoxBox`` as
ported to MuJoCo-Warp 3.12) returns, for two faces exactly flush, a phantom contact as deep as the table is wide,
which kicked freshly reset (exactly flat) cubes into the air. Sphere-box contacts are exact and single-point: the
four lower corner spheres give four contacts at rest, whatever the cube's tilt. The core box is
:data:`CORE_INSET` smaller than the cube on every side, so that it never reaches the table before a corner sphere
(its corners lie inside the corner spheres: no tilt brings it there first); it is what the tip pushes. Frame: the
body origin is the cube's center.
"""

from __future__ import annotations

from pxr import Gf, Usd, UsdPhysics

from . import usd_common as u
from .pusher import CUBE_MASS, CUBE_SIZE

CORNER_RADIUS = 0.004
"""Radius of the corner spheres [m]: the cube's corners are rounded to it."""
CORE_INSET = 0.0025
"""How much smaller than the cube the core box is on each side [m] (the corner spheres stand proud of it): more than
the corner spheres sink into the table (about 1 mm at rest under WAM-Push-Cube's contacts), so that the core box is
never flush with the table top (the primitive box-box collider's phantom contacts; at 1 mm, 3 of 128 idle resets were
kicked)."""
STATIC_FRICTION = 0.5
"""Nominal friction coefficient of every collision shape (randomized per env by the task)."""

_BLUE = (0.1, 0.4, 0.9)


def corner_centers() -> list[tuple[float, float, float]]:
    """Centers of the eight corner spheres in the body frame [m], in authoring order (x, then y, then z slowest)."""
    c = 0.5 * CUBE_SIZE - CORNER_RADIUS
    return [(x, y, z) for z in (-c, c) for y in (-c, c) for x in (-c, c)]


def build() -> Usd.Stage:
    """Author the cube (default prim ``/cube``: a rigid body with mass :data:`CUBE_MASS` and a solid cube's
    inertia)."""
    stage, root = u.new_stage("cube")
    prim = stage.GetPrimAtPath(root)
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass = UsdPhysics.MassAPI.Apply(prim)
    mass.CreateMassAttr(CUBE_MASS)
    mass.CreateDiagonalInertiaAttr(Gf.Vec3f(*u.box_inertia(CUBE_MASS, (CUBE_SIZE,) * 3)))
    mass.CreateCenterOfMassAttr(Gf.Vec3f(0.0, 0.0, 0.0))
    mass.CreatePrincipalAxesAttr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
    material = u.physics_material(stage, str(root.AppendChild("material")), STATIC_FRICTION, STATIC_FRICTION)
    core = CUBE_SIZE - 2 * CORE_INSET
    u.box(stage, root.AppendChild("core"), (core,) * 3, color=_BLUE, material=material)
    for i, center in enumerate(corner_centers()):
        u.sphere(stage, root.AppendChild(f"corner_{i}"), CORNER_RADIUS, offset=center, color=_BLUE, material=material)
    return stage
