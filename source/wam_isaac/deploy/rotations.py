"""Quaternion math in numpy (xyzw), as :mod:`wam_isaac.models.rotations` does it in torch: what the surprise monitor
needs to measure a state change the way the world model predicts it (rotation vectors for quaternion terms)."""

from __future__ import annotations

import numpy as np


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a b`` of quaternions (..., 4) xyzw."""
    av, aw = a[..., :3], a[..., 3:]
    bv, bw = b[..., :3], b[..., 3:]
    vector = aw * bv + bw * av + np.cross(av, bv)
    scalar = aw * bw - (av * bv).sum(-1, keepdims=True)
    return np.concatenate((vector, scalar), axis=-1)


def quat_conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse rotation of unit quaternions (..., 4)."""
    return np.concatenate((-q[..., :3], q[..., 3:]), axis=-1)


def rotvec_from_quat(q: np.ndarray) -> np.ndarray:
    """Rotation vectors (..., 3) [rad], angle in [0, pi], of quaternions (..., 4) of either sign."""
    q = np.where(q[..., 3:] < 0, -q, q)
    vector, w = q[..., :3], q[..., 3:]
    sin_half = np.linalg.norm(vector, axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, w)
    small = sin_half < 1.0e-6
    with np.errstate(divide="ignore", invalid="ignore"):
        scale = np.where(small, 2.0 / np.maximum(w, 1.0e-12), angle / np.where(small, 1.0, sin_half))
    return vector * scale


def state_difference(start: np.ndarray, end: np.ndarray, layout: list[dict]) -> np.ndarray:
    """The change (..., D) taking states ``start`` to ``end`` (..., S), term by term as the exported ``world_model``
    layout states it: ``end - start`` for vector terms, ``log(q_end q_start^-1)`` [rad] for rotation terms."""
    parts = []
    for term in layout:
        a = start[..., term["state_slice"][0] : term["state_slice"][1]]
        b = end[..., term["state_slice"][0] : term["state_slice"][1]]
        parts.append(rotvec_from_quat(quat_multiply(b, quat_conjugate(a))) if term["rotation"] else b - a)
    return np.concatenate(parts, axis=-1)
