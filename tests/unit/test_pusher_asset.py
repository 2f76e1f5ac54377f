"""The pusher asset: a SCARA arm (all joints about Z) whose tip sphere rides at the cube's mid-height, and a ready
pose that puts the tip behind the cube's start region."""

from __future__ import annotations

import math

import pytest
from pxr import Usd, UsdGeom, UsdPhysics

from wam_isaac_assets import USD_DIR
from wam_isaac_assets.builders import pusher as geometry


@pytest.fixture(scope="module")
def stage():
    return Usd.Stage.Open(str(USD_DIR / "pusher.usda"))


def test_three_yaw_joints_with_limits(stage):
    joints = {
        name: UsdPhysics.RevoluteJoint(stage.GetPrimAtPath(f"/pusher/{name}"))
        for name in ("shoulder", "elbow", "wrist")
    }
    assert all(joints.values()), "shoulder, elbow and wrist must be revolute joints"
    # every axis vertical: the tip height cannot change whatever the joint angles
    assert {name: j.GetAxisAttr().Get() for name, j in joints.items()} == dict.fromkeys(joints, "Z")
    limits = {name: (j.GetLowerLimitAttr().Get(), j.GetUpperLimitAttr().Get()) for name, j in joints.items()}
    assert limits == {
        "shoulder": pytest.approx((-110.0, 110.0)),
        "elbow": pytest.approx((-155.0, 155.0)),
        "wrist": pytest.approx((-160.0, 160.0)),
    }
    efforts = {n: UsdPhysics.DriveAPI(j.GetPrim(), "angular").GetMaxForceAttr().Get() for n, j in joints.items()}
    assert efforts == {"shoulder": pytest.approx(30.0), "elbow": pytest.approx(15.0), "wrist": pytest.approx(4.0)}


def test_masses_and_inertias_are_positive_and_realistic(stage):
    masses = {}
    for name in ("upper_arm", "forearm", "pusher"):
        api = UsdPhysics.MassAPI(stage.GetPrimAtPath(f"/pusher/{name}"))
        masses[name] = api.GetMassAttr().Get()
        assert min(api.GetDiagonalInertiaAttr().Get()) > 0.0, f"{name}: inertia must be positive definite"
    assert masses == {"upper_arm": pytest.approx(1.5), "forearm": pytest.approx(1.0), "pusher": pytest.approx(0.3)}


def test_only_the_tip_sphere_collides_and_sits_at_the_cube_mid_height(stage):
    colliders = [p for p in stage.Traverse() if p.HasAPI(UsdPhysics.CollisionAPI)]
    assert [str(p.GetPath()) for p in colliders] == ["/pusher/pusher/tip"]
    tip_world = (
        UsdGeom.Xformable(colliders[0]).ComputeLocalToWorldTransform(Usd.TimeCode.Default()).ExtractTranslation()
    )
    radius = UsdGeom.Sphere(colliders[0]).GetRadiusAttr().Get()
    assert tip_world[2] == pytest.approx(geometry.TABLE_TOP_Z + geometry.CUBE_SIZE / 2)
    assert tip_world[2] - radius == pytest.approx(geometry.TABLE_TOP_Z + 0.005), "5 mm clearance over the table"
    # the links run above the cube's top face, so they can never hit it
    assert geometry.LINK_Z - 0.035 > geometry.TABLE_TOP_Z + geometry.CUBE_SIZE


def test_ready_pose_puts_the_tip_behind_the_cube_pointing_forward():
    from wam_isaac_assets.robots.pusher import READY_JOINT_POS

    q1, q2, q3 = (READY_JOINT_POS[n] for n in ("shoulder", "elbow", "wrist"))
    # planar forward kinematics of the SCARA: sum of the link vectors at their cumulative angles
    lengths = (geometry.UPPER_ARM_LENGTH, geometry.FOREARM_LENGTH, geometry.TOOL_LENGTH)
    angles = (q1, q1 + q2, q1 + q2 + q3)
    x = sum(length * math.cos(a) for length, a in zip(lengths, angles, strict=True))
    y = sum(length * math.sin(a) for length, a in zip(lengths, angles, strict=True))
    assert (x, y) == pytest.approx((0.25, 0.0), abs=5e-3)
    assert q1 + q2 + q3 == pytest.approx(0.0, abs=1e-6), "the tool points along +x"
