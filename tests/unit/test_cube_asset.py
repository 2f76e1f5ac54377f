"""The pushed cube's asset: a core box for the tip and eight corner spheres that carry it on the table, together
exactly as large as the cube, with the core never reaching the table before a corner sphere, at any tilt."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pxr import Usd, UsdGeom, UsdPhysics

from wam_isaac_assets import USD_DIR
from wam_isaac_assets.builders import cube
from wam_isaac_assets.builders import pusher as geometry

HALF = 0.5 * geometry.CUBE_SIZE


@pytest.fixture(scope="module")
def stage():
    return Usd.Stage.Open(str(USD_DIR / "cube.usda"))


def test_the_cube_is_one_rigid_body_of_the_cube_mass(stage):
    root = stage.GetDefaultPrim()
    assert root.HasAPI(UsdPhysics.RigidBodyAPI)
    mass = UsdPhysics.MassAPI(root)
    assert mass.GetMassAttr().Get() == pytest.approx(geometry.CUBE_MASS)
    # solid cube: I = m a^2 / 6 about every axis through the center
    assert tuple(mass.GetDiagonalInertiaAttr().Get()) == pytest.approx((0.2 * 0.05**2 / 6,) * 3, rel=1e-6)


def test_colliders_are_a_core_box_and_eight_corner_spheres_spanning_the_cube(stage):
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    assert [p.GetName() for p in colliders] == ["core"] + [f"corner_{i}" for i in range(8)]
    core = colliders[0]
    scale = core.GetAttribute("xformOp:scale").Get()
    assert tuple(scale) == pytest.approx((geometry.CUBE_SIZE - 2 * cube.CORE_INSET,) * 3)
    centers = np.array([tuple(p.GetAttribute("xformOp:translate").Get()) for p in colliders[1:]])
    radii = np.array([UsdGeom.Sphere(p).GetRadiusAttr().Get() for p in colliders[1:]])
    assert radii == pytest.approx(np.full(8, cube.CORNER_RADIUS))
    # one sphere in each octant, each touching the cube's three faces there: the cube's extent is unchanged
    assert sorted(map(tuple, np.sign(centers).astype(int).tolist())) == sorted(
        (x, y, z) for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)
    )
    assert np.abs(centers) + radii[:, None] == pytest.approx(np.full((8, 3), HALF))


def _lowest(points: np.ndarray, tilt: float) -> np.ndarray:
    """Heights of body-frame points after tilting the body by ``tilt`` [rad] about its y axis."""
    c, s = math.cos(tilt), math.sin(tilt)
    return -s * points[:, 0] + c * points[:, 2]


@pytest.mark.parametrize("tilt_deg", [0.0, 1.0, 10.0, 25.0, 30.0, 45.0])
def test_the_core_box_stays_above_the_corner_spheres_at_any_tilt(tilt_deg):
    tilt = math.radians(tilt_deg)
    core = HALF - cube.CORE_INSET
    corners = np.array([(x, y, z) for x in (-core, core) for y in (-core, core) for z in (-core, core)])
    sphere_bottom = (_lowest(np.array(cube.corner_centers()), tilt) - cube.CORNER_RADIUS).min()
    core_bottom = _lowest(corners, tilt).min()
    assert core_bottom > sphere_bottom, (tilt_deg, core_bottom, sphere_bottom)
    if tilt_deg == 0.0:
        # lying flat the spheres carry the cube exactly at its half size, the core box 2.5 mm above the table
        assert sphere_bottom == pytest.approx(-HALF) and core_bottom - sphere_bottom == pytest.approx(cube.CORE_INSET)


def test_the_core_box_corners_lie_inside_the_corner_spheres():
    # why no tilt brings the core to the table first: each core corner is within its corner sphere (with a 1 mm inset
    # it was not, and the core's edge was the lowest point beyond 25 degrees)
    core = HALF - cube.CORE_INSET
    for center in cube.corner_centers():
        corner = np.sign(center) * core
        assert np.linalg.norm(corner - np.array(center)) < cube.CORNER_RADIUS, (center, corner)
