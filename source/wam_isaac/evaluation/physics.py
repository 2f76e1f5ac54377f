"""Physical commonsense: do state trajectories obey physics? The same checks run on a model's predicted rollouts and
on the true trajectories of the same windows, so a model is judged against what the simulator itself does (its soft
contacts let a pushed cube sink a little into the table, for instance).

Checks on trajectories (B, T, S) in physical units, for the box a :class:`~.spec.PhysicsSpec` names:

- **penetration** (per state): the box's lowest corner ``z_c - sum_j h_j |R_zj|`` lies more than a tolerance below
  the support top;
- **energy from nowhere** (per step ``t -> t+1`` with the effector away from the box at both ends): the box's
  mechanical energy ``E = 0.5 m |v|^2 + 0.5 I |w|^2 + m g z`` rises by more than a tolerance. Only the effector
  (or a collision) can add energy to a box resting on a support;
- **gravity** (per step with the box airborne at both ends and the effector away): the vertical velocity must drop
  by about ``g dt``; a violation if it drops by less than ``(1 - tolerance) g dt``;
- **contact consistency**: a predicted contact flag must agree with the box's height over the support (only where
  the dataset has the flag label and the model a contact head).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from ..models.schema import WamSchema
from .spec import PhysicsSpec


@dataclass
class CheckCount:
    """Violations of one check among the states or steps it applies to."""

    violations: int
    """States or steps that violate the check."""
    count: int
    """States or steps the check applies to."""
    worst: float | None = None
    """The most extreme value of the checked quantity where the check applies (penetration: deepest [m]; energy:
    largest gain [J]; gravity: smallest velocity drop [m/s]); ``None`` when the check applied nowhere."""

    @property
    def rate(self) -> float | None:
        """``violations / count``; ``None`` when the check applied nowhere."""
        return self.violations / self.count if self.count else None

    def to_dict(self) -> dict[str, float | int | None]:
        return {"rate": self.rate, "violations": self.violations, "count": self.count, "worst": self.worst}


def _extreme(values: torch.Tensor, largest: bool = True) -> float | None:
    if not values.numel():
        return None
    return float(values.max() if largest else values.min())


def rotation_matrix(quat: torch.Tensor) -> torch.Tensor:
    """Rotation matrices (..., 3, 3) of unit quaternions (..., 4), xyzw."""
    x, y, z, w = quat.unbind(-1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)),
        (2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)),
        (2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, -1) for row in rows], -2)


def lowest_corner_height(pos: torch.Tensor, quat: torch.Tensor, half_extents) -> torch.Tensor:
    """Height [m] of the lowest corner of a box at ``pos`` (..., 3) [m] with orientation ``quat`` (..., 4, xyzw):
    ``z_c - sum_j h_j |R_zj|``, shape (...)."""
    half = torch.as_tensor(half_extents, dtype=pos.dtype, device=pos.device)
    return pos[..., 2] - (rotation_matrix(quat)[..., 2, :].abs() * half).sum(-1)


def mechanical_energy(pos: torch.Tensor, lin_vel: torch.Tensor, ang_vel: torch.Tensor, spec: PhysicsSpec):
    """``0.5 m |v|^2 + 0.5 I |w|^2 + m g (z - support)`` [J], shape (...), with the nominal mass and the isotropic
    inertia of a uniform cube (so the frame of ``w`` does not matter)."""
    kinetic = 0.5 * spec.mass * lin_vel.square().sum(-1) + 0.5 * spec.inertia * ang_vel.square().sum(-1)
    return kinetic + spec.mass * spec.gravity * (pos[..., 2] - spec.support_height)


class BoxTrajectory:
    """The box terms of state trajectories (B, T, S), and the effector's distance to the box."""

    def __init__(self, states: torch.Tensor, schema: WamSchema, spec: PhysicsSpec) -> None:
        def term(name: str) -> torch.Tensor:
            s = schema.term(name)
            return states[..., s.start : s.stop]

        self.spec = spec
        self.pos, self.quat = term(spec.pos_term), term(spec.quat_term)
        self.lin_vel, self.ang_vel = term(spec.lin_vel_term), term(spec.ang_vel_term)
        self.lowest = lowest_corner_height(self.pos, self.quat, spec.half_extents)
        """Lowest corner height [m], (B, T)."""
        self.energy = mechanical_energy(self.pos, self.lin_vel, self.ang_vel, spec)
        """Mechanical energy [J], (B, T)."""
        if spec.effector_xy is None:
            self.effector_near = torch.zeros_like(self.lowest, dtype=torch.bool)
        else:
            tip = spec.effector_xy(term(spec.joint_pos_term))
            self.effector_near = torch.linalg.norm(tip - self.pos[..., :2], dim=-1) < spec.contact_radius
        """Whether the effector may touch the box, (B, T)."""

    def step_free(self) -> torch.Tensor:
        """Steps ``t -> t+1`` with the effector away from the box at both ends, (B, T-1)."""
        return ~(self.effector_near[:, :-1] | self.effector_near[:, 1:])


def penetration(box: BoxTrajectory) -> CheckCount:
    """States whose lowest corner is more than the tolerance below the support top (the first state of each
    trajectory, the shared true start, excluded)."""
    depth = box.spec.support_height - box.lowest[:, 1:]
    return CheckCount(int((depth > box.spec.penetration_tolerance).sum()), depth.numel(), _extreme(depth))


def energy_from_nowhere(box: BoxTrajectory) -> CheckCount:
    """Steps without the effector near the box whose energy gain exceeds the tolerance."""
    free = box.step_free()
    gain = box.energy[:, 1:] - box.energy[:, :-1]
    violations = int((free & (gain > box.spec.energy_tolerance)).sum())
    return CheckCount(violations, int(free.sum()), _extreme(gain[free]))


def gravity(box: BoxTrajectory) -> CheckCount:
    """Airborne steps (box above the support at both ends, effector away) whose vertical velocity does not fall by
    at least ``(1 - tolerance) g dt``."""
    spec = box.spec
    above = box.lowest - spec.support_height > spec.airborne_height
    airborne = above[:, :-1] & above[:, 1:] & box.step_free()
    drop = box.lin_vel[:, :-1, 2] - box.lin_vel[:, 1:, 2]  # v_z(t) - v_z(t+1), g dt in free fall
    too_little = drop < (1.0 - spec.gravity_tolerance) * spec.gravity * spec.dt
    violations = int((airborne & too_little).sum())
    return CheckCount(violations, int(airborne.sum()), _extreme(drop[airborne], largest=False))


def contact_consistency(box: BoxTrajectory, contact: torch.Tensor, tolerance: float) -> CheckCount:
    """States where the contact flag (B, T) disagrees with the geometry: touching (lowest corner at most
    ``tolerance`` [m] above the support, or below it) without the flag, or the flag while clear of the support."""
    touching = box.lowest - box.spec.support_height <= tolerance
    return CheckCount(int((touching != contact.bool()).sum()), contact.numel())


def check_trajectories(states: torch.Tensor, schema: WamSchema, spec: PhysicsSpec) -> dict[str, CheckCount]:
    """The penetration, energy and gravity checks on trajectories (B, T, S)."""
    box = BoxTrajectory(states, schema, spec)
    return {"penetration": penetration(box), "energy_from_nowhere": energy_from_nowhere(box), "gravity": gravity(box)}


def resting_height(states: torch.Tensor, schema: WamSchema, spec: PhysicsSpec, max_speed: float = 0.01) -> float:
    """Median lowest-corner height [m] of the states whose box moves slower than ``max_speed`` [m/s]: where the
    simulator really puts the support's top (a sanity check of :attr:`PhysicsSpec.support_height`); NaN if none."""
    box = BoxTrajectory(states, schema, spec)
    resting = box.lowest[torch.linalg.norm(box.lin_vel, dim=-1) < max_speed]
    return float(resting.median()) if resting.numel() else float("nan")


def compare_physics(
    predicted: torch.Tensor,
    true: torch.Tensor,
    schema: WamSchema,
    spec: PhysicsSpec | None,
    reason: str = "",
    predicted_contacts: torch.Tensor | None = None,
    true_contacts: torch.Tensor | None = None,
) -> dict:
    """Every check on predicted and true trajectories (B, T, S) of the same windows, side by side.

    Args:
        predicted, true: trajectories starting at the same true state, physical units.
        schema: the state layout.
        spec: the task's checks; ``None`` makes every check "not applicable" with ``reason``.
        predicted_contacts, true_contacts: contact probabilities / flags (B, T - 1, C) of ``predicted[:, 1:]`` and
            ``true[:, 1:]`` (the contact check runs only if the spec names a flag the model predicts).

    Returns:
        ``{"applicable", "reason" | ("tolerances", "resting_height_m", "checks": {name: {"pred", "true"}})}``.
    """
    if spec is None:
        return {"applicable": False, "reason": reason}
    names = {term.name for term in schema.state_slices()}
    missing = [t for t in (spec.pos_term, spec.quat_term, spec.lin_vel_term, spec.ang_vel_term) if t not in names]
    if missing:
        return {"applicable": False, "reason": f"the model's state has no term '{missing[0]}' that the spec checks"}
    pred, real = check_trajectories(predicted, schema, spec), check_trajectories(true, schema, spec)
    checks = {name: {"pred": pred[name].to_dict(), "true": real[name].to_dict()} for name in pred}
    checks["contact_consistency"] = _contact_check(predicted, true, schema, spec, predicted_contacts, true_contacts)
    return {
        "applicable": True,
        "tolerances": spec.tolerances(),
        "resting_height_m": resting_height(true, schema, spec),
        "checks": checks,
    }


def _contact_check(predicted, true, schema, spec, predicted_contacts, true_contacts) -> dict:
    key = spec.contact_flag_key
    if key is None:
        return {"applicable": False, "reason": spec.contact_note}
    if key not in schema.contact_keys or predicted_contacts is None or true_contacts is None:
        return {"applicable": False, "reason": f"the model has no contact head for '{key}' (no such dataset label)"}
    keys = list(schema.contact_keys)
    column = sum(math.prod(schema.contact_keys[k]) for k in keys[: keys.index(key)])  # first entry of the key
    tolerance = spec.airborne_height
    pred = contact_consistency(
        BoxTrajectory(predicted[:, 1:], schema, spec), predicted_contacts[..., column] > 0.5, tolerance
    )
    real = contact_consistency(BoxTrajectory(true[:, 1:], schema, spec), true_contacts[..., column] > 0.5, tolerance)
    return {"applicable": True, "pred": pred.to_dict(), "true": real.to_dict()}
