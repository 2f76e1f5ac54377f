"""The geometry of a WAM's state vector: how two states differ, how a change is applied, what a network reads.

The state (``S`` numbers, the dataset's ``obs/world_model/*`` terms concatenated) holds vectors (positions,
velocities, joint angles) and unit quaternions (terms named ``*quat``, xyzw). A quaternion is stored made unique
(``w >= 0``), so when a body's rotation angle crosses pi (a cube's yaw crossing +-pi) the stored quaternion flips sign:
its difference from one step to the next jumps by about 2 although the body barely turned. With
``rotation="rotvec"`` (the default) the state space has no such jump:

- a change (``D`` numbers) is ``s_{t+1} - s_t`` for vector terms and, for a quaternion term, the rotation vector [rad]
  ``log(q_{t+1} q_t^-1)`` (world frame, the shortest rotation: the same for either sign of either quaternion);
- applying a change composes ``exp(r) q_t``, so a predicted orientation moves continuously from the one before it,
  whatever sign the data stored;
- a network reads a quaternion as the first two columns of its rotation matrix (6 numbers: continuous, and the same
  for ``q`` and ``-q``).

``rotation="raw"`` is the representation before these fixes (plain differences of the stored numbers, quaternions
renormalized after each step, stored quaternions as inputs), kept to measure what the fix is worth.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .rotations import matrix_columns_from_quat, quat_conjugate, quat_from_rotvec, quat_multiply, rotvec_from_quat
from .schema import TermSlice, WamSchema

ROTATIONS = ("rotvec", "raw")
"""Rotation representations: rotation-vector changes composed onto the previous orientation, or raw differences."""


@dataclass(frozen=True)
class TermLayout:
    """Where one state term sits in the state, change and feature vectors."""

    term: TermSlice
    """The term's slice of the state vector."""
    delta: slice
    """Its entries in the change vector."""
    feature: slice
    """Its entries in the feature vector."""
    rotation: bool
    """Whether it is a quaternion handled as a rotation (change: rotation vector, feature: matrix columns)."""

    @property
    def state(self) -> slice:
        return slice(self.term.start, self.term.stop)


class StateSpace:
    """Differences, composition and network features of a schema's states.

    Args:
        schema: the state layout.
        rotation: one of :data:`ROTATIONS`.
    """

    def __init__(self, schema: WamSchema, rotation: str = "rotvec") -> None:
        if rotation not in ROTATIONS:
            raise ValueError(f"unknown rotation representation '{rotation}'; expected one of {', '.join(ROTATIONS)}")
        self.schema, self.rotation = schema, rotation
        quaternions = {s.key for s in schema.quaternion_slices()}
        layouts, delta, feature = [], 0, 0
        for term in schema.state_slices():
            is_rotation = rotation == "rotvec" and term.key in quaternions
            delta_size, feature_size = (3, 6) if is_rotation else (term.size, term.size)
            layouts.append(
                TermLayout(term, slice(delta, delta + delta_size), slice(feature, feature + feature_size), is_rotation)
            )
            delta, feature = delta + delta_size, feature + feature_size
        self.layouts: list[TermLayout] = layouts
        """One entry per state term, in state order."""
        self.delta_dim, self.feature_dim = delta, feature
        quaternion_slices = [slice(s.start, s.stop) for s in schema.quaternion_slices()]
        self._renormalized = [] if rotation == "rotvec" else quaternion_slices

    @property
    def state_dim(self) -> int:
        return self.schema.state_dim

    def difference(self, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        """The change (..., D) that takes states ``start`` to ``end`` (..., S)."""
        if not any(layout.rotation for layout in self.layouts):
            return end - start
        parts = []
        for layout in self.layouts:
            a, b = start[..., layout.state], end[..., layout.state]
            parts.append(rotvec_from_quat(quat_multiply(b, quat_conjugate(a))) if layout.rotation else b - a)
        return torch.cat(parts, dim=-1)

    def compose(self, start: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """States (..., S) reached from ``start`` (..., S) by the change ``delta`` (..., D); quaternions come out unit
        length."""
        if not any(layout.rotation for layout in self.layouts):
            return _renormalize(start + delta, self._renormalized)
        parts = []
        for layout in self.layouts:
            s, d = start[..., layout.state], delta[..., layout.delta]
            if layout.rotation:
                q = quat_multiply(quat_from_rotvec(d), s)
                parts.append(q / q.norm(dim=-1, keepdim=True).clamp_min(1.0e-12))
            else:
                parts.append(s + d)
        return torch.cat(parts, dim=-1)

    def features(self, states: torch.Tensor) -> torch.Tensor:
        """What a network reads of states (..., S): (..., F), quaternions as rotation-matrix columns."""
        if not any(layout.rotation for layout in self.layouts):
            return states
        parts = []
        for layout in self.layouts:
            s = states[..., layout.state]
            parts.append(matrix_columns_from_quat(s) if layout.rotation else s)
        return torch.cat(parts, dim=-1)

    def delta_groups(self) -> list[tuple[int, int]]:
        """``(start, stop)`` of every term in the change vector (the groups sharing one scale)."""
        return [(layout.delta.start, layout.delta.stop) for layout in self.layouts]


def _renormalize(states: torch.Tensor, quaternions: list[slice]) -> torch.Tensor:
    if not quaternions:
        return states
    parts, last = [], 0
    for q in quaternions:
        quat = states[..., q]
        parts += [states[..., last : q.start], quat / quat.norm(dim=-1, keepdim=True).clamp_min(1e-8)]
        last = q.stop
    parts.append(states[..., last:])
    return torch.cat(parts, dim=-1)
