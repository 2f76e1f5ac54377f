"""Exact quaternion math in torch (xyzw, the Isaac Lab 3.0 / Warp / Newton convention), batched over leading dims.

A rotation is represented three ways here: a unit quaternion ``q`` (xyzw, ``q`` and ``-q`` are the same rotation), a
rotation vector ``r = angle * axis`` [rad] (the exponential map: continuous through any angle below pi), and the first
two columns of its rotation matrix (6 numbers, continuous everywhere and the same for ``q`` and ``-q``: what a network
reads).
"""

from __future__ import annotations

import torch


def quat_conjugate(q: torch.Tensor) -> torch.Tensor:
    """The inverse rotation of unit quaternions (..., 4)."""
    return torch.cat((-q[..., :3], q[..., 3:]), dim=-1)


def quat_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Hamilton product ``a b`` (rotate by ``b`` first, then by ``a``), both (..., 4) xyzw."""
    av, aw = a[..., :3], a[..., 3:]
    bv, bw = b[..., :3], b[..., 3:]
    vector = aw * bv + bw * av + torch.linalg.cross(av, bv, dim=-1)
    scalar = aw * bw - (av * bv).sum(-1, keepdim=True)
    return torch.cat((vector, scalar), dim=-1)


def quat_from_rotvec(rotvec: torch.Tensor) -> torch.Tensor:
    """Unit quaternions (..., 4) of rotation vectors (..., 3) [rad]: ``(sin(a/2) axis, cos(a/2))``, ``a = |r|``.

    ``sin(a/2) / a`` is evaluated through its Taylor series below 1e-4 rad, so the gradient is exact at 0."""
    angle = rotvec.norm(dim=-1, keepdim=True)
    half = 0.5 * angle
    small = angle < 1.0e-4
    safe = torch.where(small, torch.ones_like(angle), angle)
    scale = torch.where(small, 0.5 - angle.square() / 48.0, torch.sin(half) / safe)
    return torch.cat((rotvec * scale, torch.cos(half)), dim=-1)


def rotvec_from_quat(q: torch.Tensor) -> torch.Tensor:
    """Rotation vectors (..., 3) [rad], angle in [0, pi], of quaternions (..., 4) of either sign (the shortest
    rotation: ``q`` and ``-q`` give the same vector). The logarithm of :func:`quat_from_rotvec`."""
    q = torch.where(q[..., 3:] < 0, -q, q)  # w >= 0: the angle is at most pi
    vector, w = q[..., :3], q[..., 3:]
    sin_half = vector.norm(dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, w)
    small = sin_half < 1.0e-6
    safe = torch.where(small, torch.ones_like(sin_half), sin_half)
    # angle / sin(angle/2) -> 2 / w as the angle -> 0 (w -> 1)
    scale = torch.where(small, 2.0 / w.clamp_min(1.0e-12), angle / safe)
    return vector * scale


def quat_angle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Geodesic angle [rad] in [0, pi] between the rotations ``a`` and ``b`` (..., 4), sign-invariant, (...)."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1.0e-12)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1.0e-12)
    relative = quat_multiply(b, quat_conjugate(a))
    return 2.0 * torch.atan2(relative[..., :3].norm(dim=-1), relative[..., 3].abs())


def matrix_columns_from_quat(q: torch.Tensor) -> torch.Tensor:
    """The first two columns of the rotation matrix of quaternions (..., 4), as (..., 6) ``[R00 R10 R20 R01 R11
    R21]``: a continuous, sign-invariant encoding (Zhou et al. 2019) for network inputs."""
    q = q / q.norm(dim=-1, keepdim=True).clamp_min(1.0e-12)
    x, y, z, w = q.unbind(-1)
    first = torch.stack((1 - 2 * (y * y + z * z), 2 * (x * y + w * z), 2 * (x * z - w * y)), dim=-1)
    second = torch.stack((2 * (x * y - w * z), 1 - 2 * (x * x + z * z), 2 * (y * z + w * x)), dim=-1)
    return torch.cat((first, second), dim=-1)


def yaw_tilt_angles(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The rotation from ``a`` to ``b`` (..., 4), ``b a^-1`` in the world frame, split by its swing-twist decomposition
    about the world's up axis z: ``(yaw, tilt)`` [rad], each (...) in [0, pi]. ``yaw`` is the twist, the turn about z
    (a heading error); ``tilt`` the swing about a horizontal axis, the angle between the two orientations' views of
    the world's up axis (``R_a^T z`` and ``R_b^T z``), whatever their headings. Small angles add in quadrature to
    :func:`quat_angle`; sign-invariant."""
    a = a / a.norm(dim=-1, keepdim=True).clamp_min(1.0e-12)
    b = b / b.norm(dim=-1, keepdim=True).clamp_min(1.0e-12)
    relative = quat_multiply(b, quat_conjugate(a))
    z, w = relative[..., 2], relative[..., 3]
    yaw = 2.0 * torch.atan2(z.abs(), w.abs())
    twist = torch.stack((torch.zeros_like(z), torch.zeros_like(z), z, w), dim=-1)
    norm = twist.norm(dim=-1, keepdim=True)
    identity = torch.zeros_like(twist)
    identity[..., 3] = 1.0
    twist = torch.where(norm > 1.0e-9, twist / norm.clamp_min(1.0e-12), identity)  # z = w = 0: a half turn about x/y
    swing = quat_multiply(relative, quat_conjugate(twist))
    tilt = 2.0 * torch.atan2(swing[..., :3].norm(dim=-1), swing[..., 3].abs())
    return yaw, tilt
