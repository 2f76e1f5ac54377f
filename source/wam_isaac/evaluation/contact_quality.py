"""How physically credible a box's contact with its support is, from recorded states: does a pushed box slide flat?

A box pushed across a flat support by a force through its center slides flat: it does not tilt, wobble or sink into
the support. A soft or chattering contact model shows up as tilt rates about horizontal axes, orientation wobble,
jumps of the angular velocity from one step to the next, and corners below the support top. This module measures
these on recorded states, split into *sliding* states (horizontal speed above a threshold) and *resting* ones:

- **tilt rate** [rad/s]: ``|(w_x, w_y)|``, the angular speed about horizontal axes (world frame);
- **tilt angle** [rad]: the angle between world z and the box axis closest to it (0 for a box lying on a face);
- **quaternion x/y spread** [1]: the standard deviation of the quaternion's x and y components, pooled (a box that
  only turns about z keeps them at 0);
- **angular-velocity step change** [rad/s]: the root mean square of ``|w_{t+1} - w_t|`` over consecutive states of
  one episode whose first state is in the set;
- **penetration** [m]: ``max(0, support - lowest corner height)``.

Pure torch on tensors of shape (N, T, ...) (N trajectories of T states); no simulator.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

from .physics import lowest_corner_height, rotation_matrix

SLIDING_SPEED = 0.01
"""Horizontal speed [m/s] above which a box state counts as sliding (below it: resting)."""


@dataclass(frozen=True)
class ContactStats:
    """Contact-quality figures of one set of box states (sliding or resting); ``None`` where the set is empty."""

    states: int
    """Number of states in the set."""
    tilt_rate_median: float | None
    """Median angular speed about horizontal axes [rad/s]."""
    tilt_rate_p95: float | None
    """95th percentile of the angular speed about horizontal axes [rad/s]."""
    tilt_angle_median: float | None
    """Median tilt angle from lying on a face [rad]."""
    tilt_angle_p95: float | None
    """95th percentile of the tilt angle [rad]."""
    quat_xy_spread: float | None
    """Standard deviation of the quaternion's x and y components, pooled [1]."""
    ang_vel_change_rms: float | None
    """Root mean square of the one-step change of the angular velocity within an episode [rad/s]."""
    penetration_median: float | None
    """Median depth of the lowest corner below the support top [m] (0 where above)."""
    penetration_p95: float | None
    """95th percentile of the penetration depth [m]."""
    penetration_max: float | None
    """Largest penetration depth [m]."""


@dataclass(frozen=True)
class ContactQuality:
    """Contact quality of recorded box trajectories, sliding vs resting."""

    sliding: ContactStats
    """States whose horizontal speed exceeds the sliding threshold."""
    resting: ContactStats
    """The other states."""
    sliding_speed: float
    """The threshold [m/s]."""

    def to_dict(self) -> dict:
        """Plain nested dict (JSON-ready)."""
        return asdict(self)


def tilt_angle(quat: torch.Tensor) -> torch.Tensor:
    """Angle [rad] between world z and the box axis closest to it, shape (...), from xyzw quaternions (..., 4)."""
    rotation = rotation_matrix(quat)  # column j: body axis j in the world frame
    closest = rotation[..., 2, :].abs().argmax(-1, keepdim=True)
    axis = rotation.gather(-1, closest.unsqueeze(-2).expand(*rotation.shape[:-1], 1)).squeeze(-1)
    # atan2 of the horizontal and vertical parts: accurate near 0, where arccos of the vertical part is not
    return torch.atan2(axis[..., :2].norm(dim=-1), axis[..., 2].abs())


def _quantile(values: torch.Tensor, q: float) -> float | None:
    return float(torch.quantile(values.double(), q)) if values.numel() else None


def _stats(
    selected: torch.Tensor,
    tilt_rate: torch.Tensor,
    tilt: torch.Tensor,
    quat: torch.Tensor,
    ang_vel_change: torch.Tensor,
    change_valid: torch.Tensor,
    depth: torch.Tensor,
) -> ContactStats:
    changes = ang_vel_change[selected[:, :-1] & change_valid]
    quat_xy = quat[selected][:, :2].reshape(-1)
    depths = depth[selected]
    return ContactStats(
        states=int(selected.sum()),
        tilt_rate_median=_quantile(tilt_rate[selected], 0.5),
        tilt_rate_p95=_quantile(tilt_rate[selected], 0.95),
        tilt_angle_median=_quantile(tilt[selected], 0.5),
        tilt_angle_p95=_quantile(tilt[selected], 0.95),
        quat_xy_spread=float(quat_xy.double().std(correction=0)) if quat_xy.numel() else None,
        ang_vel_change_rms=float(changes.double().square().mean().sqrt()) if changes.numel() else None,
        penetration_median=_quantile(depths, 0.5),
        penetration_p95=_quantile(depths, 0.95),
        penetration_max=float(depths.max()) if depths.numel() else None,
    )


def contact_quality(
    pos: torch.Tensor,
    quat: torch.Tensor,
    lin_vel: torch.Tensor,
    ang_vel: torch.Tensor,
    half_extents: tuple[float, float, float],
    support_height: float,
    continues: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    sliding_speed: float = SLIDING_SPEED,
) -> ContactQuality:
    """Contact quality of N recorded trajectories of T box states.

    Args:
        pos: Box center [m], (N, T, 3), in a frame whose z is vertical (env or world frame).
        quat: Box orientation, xyzw [1], (N, T, 4).
        lin_vel: Box linear velocity, world frame [m/s], (N, T, 3).
        ang_vel: Box angular velocity, world frame [rad/s], (N, T, 3).
        half_extents: Half sizes of the box along its body axes [m].
        support_height: Height of the support's top face in the frame of ``pos`` [m].
        continues: (N, T - 1) bool: state t + 1 follows state t in the same episode (default: all); the
            angular-velocity step change uses only these pairs.
        valid: (N, T) bool: states to count (default: all).
        sliding_speed: Horizontal speed [m/s] above which a state is sliding.
    """
    n, t = pos.shape[:2]
    if continues is None:
        continues = torch.ones(n, t - 1, dtype=torch.bool, device=pos.device)
    if valid is None:
        valid = torch.ones(n, t, dtype=torch.bool, device=pos.device)
    quat = quat / quat.norm(dim=-1, keepdim=True)
    tilt_rate = ang_vel[..., :2].norm(dim=-1)
    tilt = tilt_angle(quat)
    ang_vel_change = (ang_vel[:, 1:] - ang_vel[:, :-1]).norm(dim=-1)
    change_valid = continues & valid[:, 1:]
    depth = (support_height - lowest_corner_height(pos, quat, half_extents)).clamp(min=0.0)
    sliding = lin_vel[..., :2].norm(dim=-1) > sliding_speed
    args = (tilt_rate, tilt, quat, ang_vel_change, change_valid, depth)
    return ContactQuality(
        sliding=_stats(sliding & valid, *args),
        resting=_stats(~sliding & valid, *args),
        sliding_speed=sliding_speed,
    )
