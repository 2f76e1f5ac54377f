"""Run-time configuration of the deploy runtime (what the robot integrator chooses; the export fixes the rest)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class DeployConfig:
    """How :class:`~wam_isaac.deploy.Policy` checks its input and shapes its output."""

    on_bad_input: Literal["raise", "hold"] = "raise"
    """On a bad observation (missing, extra, mis-shaped, non-float or non-finite term) or a non-finite network output:
    ``"raise"`` raises :class:`~wam_isaac.deploy.BadObservation`; ``"hold"`` returns the last safe joint targets
    (the default targets before the first good step), leaves the recurrent state and last action untouched, and
    records the reason in :attr:`Policy.last_fault`."""

    joint_names: tuple[str, ...] | None = None
    """The robot's joint names in the robot's own order, or ``None``. When given, joint-indexed observation terms
    given as arrays are read in this order (length ``len(joint_names)``) and picked by name, and the joint targets
    come back in this order (the robot's joints that the policy commands); every joint the policy uses must be
    named here, else loading fails. When ``None``, arrays must follow the exported (simulation) order."""

    max_target_rate: float | tuple[float, ...] | None = None
    """Largest change of a joint target from one control step to the next, in the target's unit per step (rad,
    m, N or N m; a scalar or one value per commanded joint in output order), or ``None`` for no rate limit."""

    clamp_to_limits: bool = True
    """Clamp joint targets to the exported limits (joint position limits for position targets, effort or velocity
    limits otherwise)."""

    num_threads: int = 1
    """onnxruntime intra-op threads; one is fastest for a batch of one on a small network."""

    verify_checksums: bool = True
    """Check the sha256 of every exported file against ``metadata.json`` when loading."""
