"""Contact and penetration kernels against torch re-implementations and closed-form geometry (the history kernels,
which the labeler runs every step, are tested in test_history_kernels.py).

Tolerances as stated at each assertion.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.spatial.transform import Rotation

from wam_isaac.labels import functional as F


def random_quats(n: int, seed: int) -> torch.Tensor:
    return torch.tensor(Rotation.random(n, random_state=seed).as_quat(), dtype=torch.float32)  # xyzw


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
