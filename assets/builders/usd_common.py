"""Small, deterministic helpers for authoring articulated robots as USD with the UsdPhysics schemas.

Every asset of this project is written by code through these helpers, so that rebuilding gives byte-identical
files: prims and properties are authored in a fixed order, floats are rounded, and nothing time- or
machine-dependent (paths, user names, dates) is written into a layer.

Conventions: meters, kilograms, seconds; Z up; quaternions in the USD order ``(w, x, y, z)`` only at the pxr
boundary (``Gf.Quatf(w, x, y, z)``), everything else in the project is xyzw.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pxr import Gf, Sdf, Usd, UsdGeom, UsdPhysics, UsdShade

Vec3 = tuple[float, float, float]

_DIGITS = 6
"""Floats written to a layer are rounded to this many decimals, so tiny platform differences in the inertia
arithmetic can never change a byte of the output."""


def _r(values: Sequence[float]) -> tuple[float, ...]:
    return tuple(round(float(v), _DIGITS) + 0.0 for v in values)


# -- mass properties (closed form, about the center of mass) ---------------------------------------------------


def box_inertia(mass: float, size: Vec3) -> Vec3:
    """Principal moments of a solid box [kg m^2], size = full extents (x, y, z) [m]."""
    x, y, z = size
    return (mass * (y * y + z * z) / 12.0, mass * (x * x + z * z) / 12.0, mass * (x * x + y * y) / 12.0)


def cylinder_inertia(mass: float, radius: float, length: float, axis: str = "Z") -> Vec3:
    """Principal moments of a solid cylinder [kg m^2] whose axis is ``axis``."""
    axial = 0.5 * mass * radius * radius
    transverse = mass * (3.0 * radius * radius + length * length) / 12.0
    return tuple(axial if a == axis else transverse for a in "XYZ")  # type: ignore[return-value]


def capsule_inertia(mass: float, radius: float, length: float, axis: str = "Z") -> Vec3:
    """Principal moments of a capsule [kg m^2] approximated as a cylinder of the full length (incl. caps)."""
    return cylinder_inertia(mass, radius, length + 2.0 * radius, axis)


def sphere_inertia(mass: float, radius: float) -> Vec3:
    """Principal moments of a solid sphere [kg m^2]."""
    moment = 0.4 * mass * radius * radius
    return (moment, moment, moment)


# -- stage ------------------------------------------------------------------------------------------------------


def new_stage(root_name: str) -> tuple[Usd.Stage, Sdf.Path]:
    """Create an in-memory Z-up, meter/kilogram stage whose default prim is ``/<root_name>``.

    The default prim is the articulation root: Isaac Lab references the file's default prim, and the reference
    only resolves as an articulation when that prim carries the ArticulationRootAPI.
    """
    stage = Usd.Stage.CreateInMemory()
    UsdGeom.SetStageUpAxis(stage, UsdGeom.Tokens.z)
    UsdGeom.SetStageMetersPerUnit(stage, 1.0)
    UsdPhysics.SetStageKilogramsPerUnit(stage, 1.0)
    root = UsdGeom.Xform.Define(stage, f"/{root_name}")
    stage.SetDefaultPrim(root.GetPrim())
    return stage, root.GetPath()


def save(stage: Usd.Stage, path: str | Path) -> Path:
    """Write the stage's root layer as ``.usda`` text and return the path.

    The layer is exported through a temporary file then renamed, so a crash never leaves a half-written asset.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = stage.GetRootLayer().ExportToString()
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)
    return path


# -- materials --------------------------------------------------------------------------------------------------


def physics_material(
    stage: Usd.Stage, path: str, static_friction: float, dynamic_friction: float, restitution: float = 0.0
) -> UsdShade.Material:
    """Define a physics material (friction coefficients, restitution)."""
    material = UsdShade.Material.Define(stage, path)
    api = UsdPhysics.MaterialAPI.Apply(material.GetPrim())
    api.CreateStaticFrictionAttr(round(static_friction, _DIGITS))
    api.CreateDynamicFrictionAttr(round(dynamic_friction, _DIGITS))
    api.CreateRestitutionAttr(round(restitution, _DIGITS))
    return material


def bind_physics_material(prim: Usd.Prim, material: UsdShade.Material) -> None:
    """Bind ``material`` to a collider for physics only (purpose ``physics``)."""
    UsdShade.MaterialBindingAPI.Apply(prim).Bind(
        material, UsdShade.Tokens.weakerThanDescendants, materialPurpose="physics"
    )


# -- bodies and shapes ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Body:
    """A rigid link: its prim path and world pose at authoring time (identity rotation)."""

    path: Sdf.Path
    position: Vec3


def rigid_body(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    position: Vec3,
    mass: float,
    inertia: Vec3,
    center_of_mass: Vec3 = (0.0, 0.0, 0.0),
) -> Body:
    """Define a rigid body Xform at ``position`` [m] (world frame) with explicit mass [kg] and principal inertia
    [kg m^2] about ``center_of_mass`` (body frame) [m]."""
    xform = UsdGeom.Xform.Define(stage, path)
    xform.AddTranslateOp().Set(Gf.Vec3d(*_r(position)))
    prim = xform.GetPrim()
    UsdPhysics.RigidBodyAPI.Apply(prim)
    mass_api = UsdPhysics.MassAPI.Apply(prim)
    mass_api.CreateMassAttr(round(mass, _DIGITS))
    mass_api.CreateDiagonalInertiaAttr(Gf.Vec3f(*_r(inertia)))
    mass_api.CreateCenterOfMassAttr(Gf.Vec3f(*_r(center_of_mass)))
    mass_api.CreatePrincipalAxesAttr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
    return Body(xform.GetPath(), position)


def _place(gprim: UsdGeom.Gprim, offset: Vec3, rotation_wxyz: tuple[float, float, float, float] | None) -> None:
    gprim.AddTranslateOp().Set(Gf.Vec3d(*_r(offset)))
    if rotation_wxyz is not None:
        w, x, y, z = _r(rotation_wxyz)
        gprim.AddOrientOp().Set(Gf.Quatf(w, x, y, z))


def _finish_shape(
    gprim: UsdGeom.Gprim, color: Vec3 | None, collide: bool, material: UsdShade.Material | None
) -> Usd.Prim:
    if color is not None:
        gprim.CreateDisplayColorAttr([Gf.Vec3f(*_r(color))])
    prim = gprim.GetPrim()
    if collide:
        UsdPhysics.CollisionAPI.Apply(prim)
        if material is not None:
            bind_physics_material(prim, material)
    return prim


def box(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    size: Vec3,
    offset: Vec3 = (0.0, 0.0, 0.0),
    color: Vec3 | None = None,
    collide: bool = True,
    material: UsdShade.Material | None = None,
) -> Usd.Prim:
    """A box of full extents ``size`` [m], centered at ``offset`` in its parent body's frame."""
    cube = UsdGeom.Cube.Define(stage, path)
    cube.CreateSizeAttr(1.0)
    _place(cube, offset, None)
    cube.AddScaleOp().Set(Gf.Vec3f(*_r(size)))
    return _finish_shape(cube, color, collide, material)


def sphere(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    radius: float,
    offset: Vec3 = (0.0, 0.0, 0.0),
    color: Vec3 | None = None,
    collide: bool = True,
    material: UsdShade.Material | None = None,
) -> Usd.Prim:
    """A sphere of ``radius`` [m] centered at ``offset`` in its parent body's frame."""
    geom = UsdGeom.Sphere.Define(stage, path)
    geom.CreateRadiusAttr(round(radius, _DIGITS))
    _place(geom, offset, None)
    return _finish_shape(geom, color, collide, material)


def _axial(
    schema, stage: Usd.Stage, path, radius: float, length: float, axis: str, offset: Vec3, color, collide, material
) -> Usd.Prim:
    geom = schema.Define(stage, path)
    geom.CreateRadiusAttr(round(radius, _DIGITS))
    geom.CreateHeightAttr(round(length, _DIGITS))
    geom.CreateAxisAttr(axis)
    _place(geom, offset, None)
    return _finish_shape(geom, color, collide, material)


def capsule(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    radius: float,
    length: float,
    axis: str = "Z",
    offset: Vec3 = (0.0, 0.0, 0.0),
    color: Vec3 | None = None,
    collide: bool = True,
    material: UsdShade.Material | None = None,
) -> Usd.Prim:
    """A capsule along ``axis`` with cylinder ``length`` [m] (caps excluded) and ``radius`` [m]."""
    return _axial(UsdGeom.Capsule, stage, path, radius, length, axis, offset, color, collide, material)


def cylinder(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    radius: float,
    length: float,
    axis: str = "Z",
    offset: Vec3 = (0.0, 0.0, 0.0),
    color: Vec3 | None = None,
    collide: bool = True,
    material: UsdShade.Material | None = None,
) -> Usd.Prim:
    """A cylinder along ``axis`` of ``length`` [m] and ``radius`` [m]."""
    return _axial(UsdGeom.Cylinder, stage, path, radius, length, axis, offset, color, collide, material)


# -- joints -----------------------------------------------------------------------------------------------------


def _anchor(joint: UsdPhysics.Joint, parent: Body | None, child: Body, anchor_world: Vec3) -> None:
    """Place the joint frame at ``anchor_world`` [m] in both bodies (bodies are authored unrotated)."""
    if parent is not None:
        joint.CreateBody0Rel().SetTargets([parent.path])
        local0 = tuple(a - p for a, p in zip(anchor_world, parent.position, strict=True))
    else:
        local0 = anchor_world  # world-anchored joint
    joint.CreateBody1Rel().SetTargets([child.path])
    local1 = tuple(a - c for a, c in zip(anchor_world, child.position, strict=True))
    joint.CreateLocalPos0Attr(Gf.Vec3f(*_r(local0)))
    joint.CreateLocalPos1Attr(Gf.Vec3f(*_r(local1)))
    joint.CreateLocalRot0Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))
    joint.CreateLocalRot1Attr(Gf.Quatf(1.0, 0.0, 0.0, 0.0))


def _limits_and_drive(
    joint, limit: tuple[float, float] | None, kind: str, max_force: float, damping: float, stiffness: float
) -> None:
    """Author a joint's limits (when given) and its force drive (``kind`` = ``angular`` or ``linear``)."""
    if limit is not None:
        joint.CreateLowerLimitAttr(round(limit[0], _DIGITS))
        joint.CreateUpperLimitAttr(round(limit[1], _DIGITS))
    drive = UsdPhysics.DriveAPI.Apply(joint.GetPrim(), kind)
    drive.CreateTypeAttr("force")
    drive.CreateMaxForceAttr(round(max_force, _DIGITS))
    drive.CreateDampingAttr(round(damping, _DIGITS))
    drive.CreateStiffnessAttr(round(stiffness, _DIGITS))


def fixed_joint(stage: Usd.Stage, path: Sdf.Path | str, parent: Body | None, child: Body) -> UsdPhysics.FixedJoint:
    """Weld ``child`` to ``parent`` (or to the world when ``parent`` is None) at the child's origin."""
    joint = UsdPhysics.FixedJoint.Define(stage, path)
    _anchor(joint, parent, child, child.position)
    return joint


def revolute_joint(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    parent: Body | None,
    child: Body,
    anchor: Vec3,
    axis: str,
    limit_deg: tuple[float, float] | None,
    max_force: float,
    max_velocity_deg: float | None = None,
    damping: float = 0.0,
    stiffness: float = 0.0,
) -> UsdPhysics.RevoluteJoint:
    """A hinge about ``axis`` through ``anchor`` [m, world]; limits [deg]; drive effort limit ``max_force`` [N m].

    The drive's stiffness/damping are defaults only: Isaac Lab's actuator config overrides them at spawn.
    """
    joint = UsdPhysics.RevoluteJoint.Define(stage, path)
    _anchor(joint, parent, child, anchor)
    joint.CreateAxisAttr(axis)
    _limits_and_drive(joint, limit_deg, "angular", max_force, damping, stiffness)
    if max_velocity_deg is not None:
        joint.GetPrim().CreateAttribute("physxJoint:maxJointVelocity", Sdf.ValueTypeNames.Float).Set(
            round(max_velocity_deg, _DIGITS)
        )
    return joint


def prismatic_joint(
    stage: Usd.Stage,
    path: Sdf.Path | str,
    parent: Body | None,
    child: Body,
    anchor: Vec3,
    axis: str,
    limit: tuple[float, float] | None,
    max_force: float,
    damping: float = 0.0,
    stiffness: float = 0.0,
) -> UsdPhysics.PrismaticJoint:
    """A slider along ``axis`` through ``anchor`` [m, world]; limits [m]; drive effort limit ``max_force`` [N]."""
    joint = UsdPhysics.PrismaticJoint.Define(stage, path)
    _anchor(joint, parent, child, anchor)
    joint.CreateAxisAttr(axis)
    _limits_and_drive(joint, limit, "linear", max_force, damping, stiffness)
    return joint


def articulation_root(prim: Usd.Prim, self_collisions: bool = False) -> None:
    """Mark ``prim`` as the articulation root (the file's default prim)."""
    UsdPhysics.ArticulationRootAPI.Apply(prim)
    prim.CreateAttribute("physxArticulation:enabledSelfCollisions", Sdf.ValueTypeNames.Bool).Set(self_collisions)


def deg(radians: float) -> float:
    """Radians to degrees (USD joint limits are in degrees)."""
    return math.degrees(radians)
