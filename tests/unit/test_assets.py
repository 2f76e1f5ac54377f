"""The authored USD assets: rebuilding is byte-identical, and the cart-pole has the physics it documents."""

from __future__ import annotations

import pytest
from pxr import Usd, UsdPhysics

from wam_isaac_assets import USD_DIR
from wam_isaac_assets.builders import BUILDERS, build_all, usd_common


@pytest.mark.parametrize("name", BUILDERS)
def test_rebuild_is_byte_identical(name, tmp_path):
    (path,) = build_all(tmp_path, (name,))
    shipped = USD_DIR / f"{name}.usda"
    assert shipped.is_file(), f"{shipped} missing: run `python -m wam_isaac_assets`"
    assert path.read_bytes() == shipped.read_bytes(), f"{name}: builder output differs from the shipped asset"


def test_box_and_cylinder_inertia_closed_form():
    # solid box 2 kg, 0.3 x 0.2 x 0.1 m: Ixx = m (y^2 + z^2) / 12 = 2 * 0.05 / 12
    ixx, iyy, izz = usd_common.box_inertia(2.0, (0.3, 0.2, 0.1))
    assert ixx == pytest.approx(2.0 * (0.04 + 0.01) / 12)
    assert iyy == pytest.approx(2.0 * (0.09 + 0.01) / 12)
    assert izz == pytest.approx(2.0 * (0.09 + 0.04) / 12)
    # solid cylinder 1 kg, r 0.1 m, L 1 m about Z: axial m r^2 / 2, transverse m (3 r^2 + L^2) / 12
    assert usd_common.cylinder_inertia(1.0, 0.1, 1.0, "Z") == pytest.approx(
        (0.25 / 3 + 0.0025, 0.25 / 3 + 0.0025, 0.005)
    )


def test_cartpole_structure():
    stage = Usd.Stage.Open(str(USD_DIR / "cartpole.usda"))
    root = stage.GetDefaultPrim()
    assert root.HasAPI(UsdPhysics.ArticulationRootAPI), "the default prim must be the articulation root"
    slider = UsdPhysics.PrismaticJoint(stage.GetPrimAtPath("/cartpole/slider_to_cart"))
    hinge = UsdPhysics.RevoluteJoint(stage.GetPrimAtPath("/cartpole/cart_to_pole"))
    assert slider and hinge
    assert slider.GetAxisAttr().Get() == "X" and hinge.GetAxisAttr().Get() == "Y"
    masses = {
        name: UsdPhysics.MassAPI(stage.GetPrimAtPath(f"/cartpole/{name}")).GetMassAttr().Get()
        for name in ("cart", "pole")
    }
    assert masses == {"cart": pytest.approx(1.0), "pole": pytest.approx(0.1)}
    # the pole's center of mass is half its length above the hinge
    com = UsdPhysics.MassAPI(stage.GetPrimAtPath("/cartpole/pole")).GetCenterOfMassAttr().Get()
    assert tuple(com) == pytest.approx((0.0, 0.0, 0.5))


def test_build_script_reproduces_the_shipped_assets(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    script = Path(__file__).resolve().parents[2] / "scripts" / "build_assets.py"
    result = subprocess.run([sys.executable, str(script), "--out", str(tmp_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name in BUILDERS:
        assert (tmp_path / f"{name}.usda").read_bytes() == (USD_DIR / f"{name}.usda").read_bytes(), name
