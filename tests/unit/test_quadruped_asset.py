"""The quadruped asset: a floating-base 12-DoF robot of about 12 kg, read back from the shipped USD with pxr."""

from __future__ import annotations

import math

import pytest
from pxr import Usd, UsdGeom, UsdPhysics

from wam_isaac_assets import USD_DIR
from wam_isaac_assets.builders import quadruped as geometry

LEGS = ("FL", "FR", "RL", "RR")


@pytest.fixture(scope="module")
def stage():
    return Usd.Stage.Open(str(USD_DIR / "quadruped.usda"))


def world_position(prim: Usd.Prim) -> tuple[float, float, float]:
    return tuple(UsdGeom.Xformable(prim).ComputeLocalToWorldTransform(Usd.TimeCode.Default()).ExtractTranslation())


def test_default_prim_is_a_floating_articulation_root(stage):
    root = stage.GetDefaultPrim()
    assert root.GetName() == "quadruped" and root.HasAPI(UsdPhysics.ArticulationRootAPI)
    joints = [UsdPhysics.Joint(p) for p in stage.Traverse() if p.IsA(UsdPhysics.Joint)]
    # a floating base: every joint has a parent body (none welds the trunk to the world)
    assert all(j.GetBody0Rel().GetTargets() for j in joints)
    children = {str(t) for j in joints for t in j.GetBody1Rel().GetTargets()}
    assert "/quadruped/base" not in children, "the trunk must be the root body, child of no joint"


def test_total_mass_is_that_of_a_12_kg_robot(stage):
    bodies = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.RigidBodyAPI)]
    assert len(bodies) == 1 + 4 * 4  # trunk + hip, thigh, calf, foot per leg
    masses = {p.GetName(): UsdPhysics.MassAPI(p).GetMassAttr().Get() for p in bodies}
    assert sum(masses.values()) == pytest.approx(12.2, abs=1e-4)
    assert masses["base"] == pytest.approx(6.0)
    for body in bodies:
        assert min(UsdPhysics.MassAPI(body).GetDiagonalInertiaAttr().Get()) > 0.0, body.GetPath()


def test_twelve_revolute_joints_with_axes_limits_and_efforts(stage):
    revolute = [p for p in stage.Traverse() if p.IsA(UsdPhysics.RevoluteJoint)]
    assert sorted(p.GetName() for p in revolute) == sorted(
        f"{leg}_{part}_joint" for leg in LEGS for part in ("hip", "thigh", "calf")
    )
    expected = {
        "hip": ("X", (-46.0, 46.0), 23.7),
        "thigh": ("Y", (-60.0, 240.0), 23.7),
        "calf": ("Y", (-154.5, -52.5), 35.55),
    }
    for prim in revolute:
        joint = UsdPhysics.RevoluteJoint(prim)
        axis, limits, effort = expected[prim.GetName().split("_")[1]]
        assert joint.GetAxisAttr().Get() == axis, prim.GetName()
        assert (joint.GetLowerLimitAttr().Get(), joint.GetUpperLimitAttr().Get()) == pytest.approx(limits)
        assert UsdPhysics.DriveAPI(prim, "angular").GetMaxForceAttr().Get() == pytest.approx(effort)
    feet = [p for p in stage.Traverse() if p.IsA(UsdPhysics.FixedJoint)]
    assert sorted(p.GetName() for p in feet) == sorted(f"{leg}_foot_joint" for leg in LEGS)


def test_legs_hang_from_mirrored_hips_and_feet_are_spheres(stage):
    for leg, (sign_x, sign_y) in geometry.LEGS.items():
        hip = world_position(stage.GetPrimAtPath(f"/quadruped/{leg}_hip"))
        assert hip == pytest.approx((0.18 * sign_x, 0.05 * sign_y, 0.0))
        knee = world_position(stage.GetPrimAtPath(f"/quadruped/{leg}_calf"))
        foot = world_position(stage.GetPrimAtPath(f"/quadruped/{leg}_foot"))
        assert knee == pytest.approx((0.18 * sign_x, 0.13 * sign_y, -0.2))
        assert foot == pytest.approx((0.18 * sign_x, 0.13 * sign_y, -0.4))
        sphere = UsdGeom.Sphere(stage.GetPrimAtPath(f"/quadruped/{leg}_foot/collision"))
        assert sphere and sphere.GetRadiusAttr().Get() == pytest.approx(0.02)
    trunk = stage.GetPrimAtPath("/quadruped/base/collision")
    assert trunk.IsA(UsdGeom.Cube) and trunk.HasAPI(UsdPhysics.CollisionAPI)


def test_default_stance_puts_the_trunk_at_its_standing_height():
    """Planar forward kinematics of the robot config's stance: foot below the thigh joint, plus the foot radius."""
    from wam_isaac_assets.robots.quadruped import QUADRUPED_CFG, STANDING_HEIGHT

    joint_pos = QUADRUPED_CFG.init_state.joint_pos
    calf = joint_pos[".*_calf_joint"]
    for thigh in (joint_pos["F[LR]_thigh_joint"], joint_pos["R[LR]_thigh_joint"]):
        drop = geometry.THIGH_LENGTH * math.cos(thigh) + geometry.CALF_LENGTH * math.cos(thigh + calf)
        assert drop + geometry.FOOT_RADIUS == pytest.approx(STANDING_HEIGHT, abs=0.01)
    assert QUADRUPED_CFG.init_state.pos[2] > STANDING_HEIGHT, "spawned above the ground, not in it"
