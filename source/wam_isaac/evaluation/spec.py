"""What the physical-commonsense checks of a task look at: a declarative :class:`PhysicsSpec` per task.

A task opts in by naming its spec in its gym registration, ``kwargs["wam_physics_spec_entry_point"] =
"<module>:<NAME>"``; :func:`physics_spec_for` finds it. The spec names the state terms of one free rigid box (the
manipulated object), the support surface it rests on, the effector that may push it (forward kinematics from the
joint positions), and the tolerances of every check. Tasks without one get "not applicable".
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

import torch

SPEC_ENTRY_POINT = "wam_physics_spec_entry_point"
"""Key of a task's gym registration kwargs that names its :class:`PhysicsSpec` (``"module:ATTRIBUTE"``)."""


@dataclass(frozen=True)
class PhysicsSpec:
    """The physical-commonsense checks of one task, on one free rigid box resting on a horizontal support."""

    dt: float
    """Duration of one env step [s] (``sim.dt * decimation``)."""
    half_extents: tuple[float, float, float]
    """Half sizes of the box along its body axes [m]."""
    mass: float
    """Nominal mass of the box [kg] (the energy check uses it; DR may scale the real one)."""
    support_height: float
    """Height of the support's top face in the env frame [m] (e.g. the table top)."""
    effector_xy: Callable[[torch.Tensor], torch.Tensor] | None = None
    """Forward kinematics: joint positions (..., J) [rad] -> effector center (x, y) in the env frame [m], (..., 2).
    ``None``: nothing can push the box, the energy check considers every step."""
    contact_radius: float = 0.0
    """Horizontal effector-to-box-center distance [m] under which the effector may be acting on the box (effector
    radius + box half diagonal + a margin for the effector's travel within a step)."""
    gravity: float = 9.81
    """Gravitational acceleration [m/s^2], pointing to -z."""
    pos_term: str = "cube_pos"
    """State term of the box center, env frame [m], 3."""
    quat_term: str = "cube_quat"
    """State term of the box orientation, xyzw [1], 4."""
    lin_vel_term: str = "cube_lin_vel"
    """State term of the box linear velocity [m/s], 3."""
    ang_vel_term: str = "cube_ang_vel"
    """State term of the box angular velocity [rad/s], 3."""
    joint_pos_term: str = "joint_pos"
    """State term of the effector's joint positions [rad] (input of :attr:`effector_xy`)."""
    penetration_tolerance: float = 0.005
    """Depth [m] of the box's lowest corner below the support top beyond which a state is a penetration."""
    energy_tolerance: float = 0.005
    """Gain of the box's mechanical energy over one step [J] beyond which a step without contact is a violation."""
    airborne_height: float = 0.005
    """Height [m] of the box's lowest corner above the support beyond which the box counts as airborne."""
    gravity_tolerance: float = 0.5
    """Fraction of ``g dt``: an airborne step is a violation if the vertical velocity drops by less than
    ``(1 - gravity_tolerance) g dt``."""
    contact_flag_key: str | None = None
    """Dataset key of the box's contact-flag label with the support; ``None``: the contact check does not apply."""
    contact_note: str = "the task declares no contact-flag label for its object"
    """Why the contact-vs-height check does not apply when :attr:`contact_flag_key` is ``None``."""

    @property
    def inertia(self) -> float:
        """Moment of inertia of a uniform cube about any axis through its center [kg m^2]: ``m s^2 / 6``
        (``s`` = edge length; exact for a cube only, the mean of the three box moments otherwise)."""
        a, b, c = (2 * h for h in self.half_extents)
        return self.mass * ((b * b + c * c) + (a * a + c * c) + (a * a + b * b)) / 36.0

    def tolerances(self) -> dict[str, float | str | None]:
        """Every threshold the checks use, for the report."""
        return {
            "dt_s": self.dt,
            "gravity_m_s2": self.gravity,
            "support_height_m": self.support_height,
            "half_extents_m": list(self.half_extents),
            "nominal_mass_kg": self.mass,
            "penetration_m": self.penetration_tolerance,
            "energy_gain_J": self.energy_tolerance,
            "contact_radius_m": self.contact_radius,
            "airborne_height_m": self.airborne_height,
            "gravity_fraction_of_g_dt": self.gravity_tolerance,
        }


def load_entry_point(entry_point: str):
    """The object that ``"module.path:ATTRIBUTE"`` names."""
    module, _, attribute = entry_point.partition(":")
    return getattr(importlib.import_module(module), attribute)


def physics_spec_for(task: str) -> tuple[PhysicsSpec | None, str]:
    """The :class:`PhysicsSpec` a task registered, and why there is none (empty string when there is one)."""
    import gymnasium as gym

    import wam_isaac_tasks  # noqa: F401  (registers the WAM tasks)

    if task not in gym.registry:
        return None, f"task '{task}' is not registered here"
    entry_point = (gym.spec(task).kwargs or {}).get(SPEC_ENTRY_POINT)
    if entry_point is None:
        return None, f"task '{task}' registers no {SPEC_ENTRY_POINT}"
    return load_entry_point(entry_point), ""
