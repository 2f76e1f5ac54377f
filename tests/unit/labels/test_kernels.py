"""Label kernels against independent references: scipy's rotations, torch re-implementations and closed-form physics.

Tolerances: float32 kernels against float64 references, 1e-5 relative / 1e-5 absolute unless stated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.spatial.transform import Rotation

from wam_isaac.labels import functional as F

ATOL = 1e-5
RTOL = 1e-5


def random_quats(n: int, seed: int) -> torch.Tensor:
    return torch.tensor(Rotation.random(n, random_state=seed).as_quat(), dtype=torch.float32)  # xyzw


def rotvec(q: torch.Tensor) -> np.ndarray:
    return Rotation.from_quat(q.reshape(-1, 4).double().numpy()).as_rotvec()


def test_pose_delta_matches_scipy_for_random_poses():
    n, p = 64, 3
    q0, q1 = random_quats(n * p, 0).view(n, p, 4), random_quats(n * p, 1).view(n, p, 4)
    p0, p1 = torch.randn(n, p, 3), torch.randn(n, p, 3)
    dpos_w, dpos_l, drot = F.pose_delta(p0, q0, p1, q1)
    r0 = Rotation.from_quat(q0.reshape(-1, 4).double().numpy())
    r1 = Rotation.from_quat(q1.reshape(-1, 4).double().numpy())
    expected_local = r0.inv().apply((p1 - p0).reshape(-1, 3).double().numpy())
    expected_rot = (r0.inv() * r1).as_rotvec()  # scipy: shortest rotation, angle in [0, pi]
    torch.testing.assert_close(dpos_w, p1 - p0)
    np.testing.assert_allclose(dpos_l.reshape(-1, 3).numpy(), expected_local, atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(drot.reshape(-1, 3).numpy(), expected_rot, atol=2e-5, rtol=1e-4)


def test_pose_delta_is_sign_invariant_and_zero_at_rest():
    q = random_quats(16, 2).view(16, 1, 4)
    pos = torch.randn(16, 1, 3)
    for q_now in (q, -q):  # -q is the same orientation
        dpos_w, dpos_l, drot = F.pose_delta(pos, q, pos, q_now)
        assert dpos_w.abs().max() == 0 and dpos_l.abs().max() == 0
        assert drot.abs().max() < 1e-6, "q vs -q must be no rotation"


@pytest.mark.parametrize("angle", [math.pi - 1e-3, -(math.pi - 1e-3), 0.5, 1e-6])
def test_pose_delta_angle_near_pi_is_the_short_way(angle):
    # yaw from +170 deg to -170 deg is a 20 deg turn, not 340: build it as q0 = yaw(a), q1 = yaw(a + 20 deg)
    start = Rotation.from_euler("z", angle)
    step = math.radians(20.0)
    q0 = torch.tensor(start.as_quat(), dtype=torch.float32).view(1, 1, 4)
    q1 = torch.tensor((start * Rotation.from_euler("z", step)).as_quat(), dtype=torch.float32).view(1, 1, 4)
    _, _, drot = F.pose_delta(torch.zeros(1, 1, 3), q0, torch.zeros(1, 1, 3), q1)
    torch.testing.assert_close(drot.view(3), torch.tensor([0.0, 0.0, step]), atol=2e-5, rtol=0)


def test_body_velocity_delta_is_the_change_of_body_frame_velocities():
    n = 32
    q0, q1 = random_quats(n, 3).view(n, 1, 4), random_quats(n, 4).view(n, 1, 4)
    v0, v1, w0, w1 = (torch.randn(n, 1, 3) for _ in range(4))
    dv, dw = F.body_velocity_delta(q0, v0, w0, q1, v1, w1)
    r0 = Rotation.from_quat(q0.view(n, 4).double().numpy())
    r1 = Rotation.from_quat(q1.view(n, 4).double().numpy())
    expected_v = r1.inv().apply(v1.view(n, 3).double().numpy()) - r0.inv().apply(v0.view(n, 3).double().numpy())
    expected_w = r1.inv().apply(w1.view(n, 3).double().numpy()) - r0.inv().apply(w0.view(n, 3).double().numpy())
    np.testing.assert_allclose(dv.view(n, 3).numpy(), expected_v, atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(dw.view(n, 3).numpy(), expected_w, atol=ATOL, rtol=RTOL)


def test_joint_delta_wraps_only_the_wrapped_joints():
    q_prev = torch.tensor([[3.1, 3.1, 0.2]])
    q_now = torch.tensor([[-3.1, -3.1, 0.5]])
    qd_prev, qd_now = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0.5, 2.5, 3.0]])
    dq, dqd = F.joint_delta(q_prev, qd_prev, q_now, qd_now, wrap=torch.tensor([1, 0, 1]))
    # wrapped: 3.1 -> -3.1 crosses pi: +0.0832 rad; unwrapped (a slider or limited joint): -6.2
    torch.testing.assert_close(dq, torch.tensor([[2 * math.pi - 6.2, -6.2, 0.3]]), atol=1e-5, rtol=0)
    torch.testing.assert_close(dqd, torch.tensor([[-0.5, 0.5, 0.0]]))


def test_mechanical_energy_of_a_falling_and_spinning_box_closed_form():
    # one 2 kg box (0.2 x 0.4 x 0.6 m) at height 1.5 m, moving at (1, 2, -3) m/s, spinning at 4 rad/s about
    # its own x axis, rotated 90 deg about z (so its x axis is the world y axis)
    m, (a, b, c) = 2.0, (0.2, 0.4, 0.6)
    inertia = torch.diag(torch.tensor([m * (b * b + c * c) / 12, m * (a * a + c * c) / 12, m * (a * a + b * b) / 12]))
    quat = torch.tensor(Rotation.from_euler("z", 90, degrees=True).as_quat(), dtype=torch.float32).view(1, 1, 4)
    omega_world = torch.tensor([[[0.0, 4.0, 0.0]]])  # = 4 rad/s about the box's own x axis
    v = torch.tensor([[[1.0, 2.0, -3.0]]])
    out = F.mechanical_energy(
        torch.tensor([[[0.3, -0.2, 1.5]]]),
        quat,
        v,
        omega_world,
        torch.tensor([[m]]),
        inertia.view(1, 1, 9),
        (0.0, 0.0, -9.81),
        energy_prev=torch.tensor([10.0]),
    )
    kinetic = 0.5 * m * 14.0 + 0.5 * inertia[0, 0].item() * 16.0
    potential = m * 9.81 * 1.5
    torch.testing.assert_close(out["kinetic"], torch.tensor([kinetic]))
    torch.testing.assert_close(out["potential"], torch.tensor([potential]))
    torch.testing.assert_close(out["energy_delta"], torch.tensor([kinetic + potential - 10.0]))


def test_actuator_work_trapezoid():
    torque = torch.tensor([[2.0, -1.0], [0.0, 5.0]])
    qd_prev, qd_now = torch.tensor([[1.0, 1.0], [3.0, 0.0]]), torch.tensor([[3.0, -1.0], [3.0, 2.0]])
    work = F.actuator_work(torque, qd_prev, qd_now, dt=0.01)
    # env 0: 2 * 2 + (-1) * 0 = 4 W; env 1: 0 + 5 * 1 = 5 W; times 0.01 s
    torch.testing.assert_close(work, torch.tensor([0.04, 0.05]))


def test_contact_flags_and_magnitudes():
    forces = torch.tensor([[[0.0, 0.0, 1.962], [0.3, 0.4, 0.0], [0.0, 0.0, 0.0]]])
    flag, magnitude = F.contact(forces, threshold=1.0)
    torch.testing.assert_close(magnitude, torch.tensor([[1.962, 0.5, 0.0]]))
    assert flag.tolist() == [[1.0, 0.0, 0.0]]


def test_plane_penetration_of_primitives_matches_torch_reference():
    # shapes: sphere r=0.05, box half (0.1, 0.2, 0.3), capsule r=0.02 hh=0.1, cylinder r=0.03 hh=0.2 on one body
    n = 64
    body_q = random_quats(n, 5)
    body_p = torch.rand(n, 3) * 0.6 - 0.3
    pose = torch.cat([body_p, body_q], -1).view(n, 1, 7)
    local_q = random_quats(4, 6)
    local = torch.cat([torch.rand(4, 3) * 0.1, local_q], -1)
    types = torch.tensor([3, 7, 4, 6])
    scale = torch.tensor([[0.05, 0, 0], [0.1, 0.2, 0.3], [0.02, 0.1, 0], [0.03, 0.2, 0]])
    plane = torch.full((n,), 0.05)
    depth = F.plane_penetration(pose, torch.zeros(4, dtype=torch.int32), types, local, scale, plane)

    # reference: sample each shape's surface densely and take the lowest point
    r_body = Rotation.from_quat(body_q.double().numpy())
    expected = np.zeros((n, 4))
    for s in range(4):
        r_shape = Rotation.from_quat(local_q[s].double().numpy())
        surface = sample_surface(int(types[s]), scale[s].double().numpy())
        for e in range(n):
            points = (r_body[e] * r_shape).apply(surface) + r_body[e].apply(local[s, :3].double().numpy())
            lowest = points[:, 2].min() + body_p[e, 2].item()
            expected[e, s] = max(0.05 - lowest, 0.0)
    assert (expected > 0).any(1).sum() > 10, "the test must include penetrating poses"
    np.testing.assert_allclose(depth.numpy(), expected, atol=2e-3)  # surface sampling resolution


def sample_surface(shape_type: int, scale: np.ndarray, k: int = 40) -> np.ndarray:
    """Points on the surface of a Newton primitive (dense enough for a 2 mm reference)."""
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, k), np.linspace(0, np.pi, k))
    sphere = np.stack([np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v)], -1).reshape(-1, 3)
    if shape_type == 3:
        return sphere * scale[0]
    if shape_type == 7:
        g = np.linspace(-1, 1, k)
        corners = np.array(np.meshgrid(g, g, g)).reshape(3, -1).T
        return corners[(np.abs(corners) == 1).any(1)] * scale
    if shape_type == 4:
        caps = [sphere * scale[0] + [0, 0, z] for z in (-scale[1], scale[1])]
        return np.concatenate(caps)
    if shape_type == 6:
        theta = np.linspace(0, 2 * np.pi, 4 * k)
        rim = np.stack([np.cos(theta) * scale[0], np.sin(theta) * scale[0], np.zeros_like(theta)], -1)
        return np.concatenate([rim + [0, 0, z] for z in (-scale[1], scale[1])])
    raise ValueError(shape_type)


def test_relative_pose_matches_scipy():
    n = 32
    qa, qb = random_quats(n, 7), random_quats(n, 8)
    pa, pb = torch.randn(n, 3), torch.randn(n, 3)
    pos, rot = F.relative_pose(pa, qa, pb, qb)
    ra, rb = Rotation.from_quat(qa.double().numpy()), Rotation.from_quat(qb.double().numpy())
    np.testing.assert_allclose(pos.numpy(), ra.inv().apply((pb - pa).double().numpy()), atol=ATOL, rtol=RTOL)
    np.testing.assert_allclose(rot.numpy(), (ra.inv() * rb).as_rotvec(), atol=2e-5, rtol=1e-4)
