"""State vectors in WAM-Push-Cube's world-model layout (joint_pos 3, joint_vel 3, cube_pos 3, cube_quat 4 xyzw,
cube_lin_vel 3, cube_ang_vel 3), built from closed-form cube motions. Imported by the tests of this directory (a
unique module name, not ``conftest``)."""

from __future__ import annotations

import math

import torch

from wam_isaac.evaluation.spec import PhysicsSpec
from wam_isaac.models.schema import WamSchema

TABLE_Z = 0.40
"""Support height of the test spec [m]."""
HALF = 0.025
"""Cube half size [m]."""
DT = 0.04
"""Env step [s]."""
G = 9.81

SCHEMA = WamSchema(
    state_keys={
        "obs/world_model/joint_pos": [3],
        "obs/world_model/joint_vel": [3],
        "obs/world_model/cube_pos": [3],
        "obs/world_model/cube_quat": [4],
        "obs/world_model/cube_lin_vel": [3],
        "obs/world_model/cube_ang_vel": [3],
    },
    instruction_keys={"obs/instruction/goal": [2]},
    action_shape=[3],
)
"""The Push-Cube state layout."""

SPEC = PhysicsSpec(
    dt=DT,
    half_extents=(HALF, HALF, HALF),
    mass=0.2,
    support_height=TABLE_Z,
    effector_xy=lambda joint_pos: joint_pos[..., :2],  # the test's "arm": joint_pos[:2] is the tip (x, y)
    contact_radius=0.02 + HALF * math.sqrt(2.0) + 0.03,
    penetration_tolerance=0.005,
    energy_tolerance=0.005,
    airborne_height=0.005,
    gravity_tolerance=0.5,
)
"""Push-Cube-like checks whose effector is read straight from the state (tip (x, y) = joint_pos[:2])."""

FAR_TIP = (0.0, 0.0)
"""A tip position far (> 0.3 m) from the cubes of these tests [m]."""


def cube_states(pos, lin_vel=None, quat=(0.0, 0.0, 0.0, 1.0), ang_vel=None, tip=FAR_TIP) -> torch.Tensor:
    """One trajectory (1, T, 19): cube positions ``pos`` (T, 3) [m], velocities (T, 3), a fixed orientation and
    tip (x, y)."""
    pos = torch.as_tensor(pos, dtype=torch.float64)
    steps = pos.shape[0]
    lin_vel = torch.zeros(steps, 3, dtype=torch.float64) if lin_vel is None else torch.as_tensor(lin_vel).double()
    ang_vel = torch.zeros(steps, 3, dtype=torch.float64) if ang_vel is None else torch.as_tensor(ang_vel).double()
    joint_pos = torch.zeros(steps, 3, dtype=torch.float64)
    joint_pos[:, :2] = torch.as_tensor(tip, dtype=torch.float64)
    quat = torch.as_tensor(quat, dtype=torch.float64).expand(steps, 4)
    joint_vel = torch.zeros(steps, 3, dtype=torch.float64)
    return torch.cat((joint_pos, joint_vel, pos, quat, lin_vel, ang_vel), dim=-1)[None]


def resting(steps: int = 5, height: float = TABLE_Z + HALF) -> torch.Tensor:
    """A cube at rest with its center at ``height`` [m]."""
    return cube_states(torch.tensor([[0.36, 0.0, height]], dtype=torch.float64).expand(steps, 3))


def free_fall(steps: int = 6, drop_height: float = 0.5) -> torch.Tensor:
    """A cube released at rest ``drop_height`` [m] above the table: ``z = z0 - g t^2 / 2``, ``v_z = -g t``."""
    t = torch.arange(steps, dtype=torch.float64) * DT
    z = TABLE_Z + HALF + drop_height - 0.5 * G * t**2
    pos = torch.stack((torch.full_like(t, 0.36), torch.zeros_like(t), z), dim=-1)
    vel = torch.stack((torch.zeros_like(t), torch.zeros_like(t), -G * t), dim=-1)
    return cube_states(pos, vel)
