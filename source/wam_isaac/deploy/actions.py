"""The action pipeline after the network, as the simulator applied it: raw action -> joint targets.

``raw`` (network output) -> clip to ``[-clip_actions, clip_actions]`` (rsl-rl's wrapper, if set) -> per action term
``target = raw * scale + offset``, clamped to the term's ``clip`` -> clamped to the joint limits -> rate-limited.
"""

from __future__ import annotations

import numpy as np

from .config import DeployConfig
from .errors import MetadataError


class ActionPipeline:
    """Raw network actions (1, dim) -> joint targets in the output order (see :attr:`joint_names`).

    Args:
        spec: the metadata's ``action`` entry.
        config: the runtime configuration (joint order, limits, rate limit).
    """

    def __init__(self, spec: dict, config: DeployConfig):
        self.dim = int(spec["dim"])
        clip = spec.get("clip_actions")
        self.clip_actions = None if clip is None else float(clip)
        scale, offset = np.ones(self.dim), np.zeros(self.dim)
        lower, upper = np.full(self.dim, -np.inf), np.full(self.dim, np.inf)
        for term in spec["terms"]:
            start, stop = term["slice"]
            scale[start:stop] = term["scale"]
            offset[start:stop] = term["offset"]
            if term.get("clip") is not None:
                bounds = np.asarray(term["clip"], dtype=np.float64)
                lower[start:stop], upper[start:stop] = bounds[:, 0], bounds[:, 1]
        if config.clamp_to_limits:
            lower = np.maximum(lower, np.asarray(spec["limits"]["lower"], dtype=np.float64))
            upper = np.minimum(upper, np.asarray(spec["limits"]["upper"], dtype=np.float64))
        names: list[str] = list(spec["joint_names"])
        # output order: the robot's order of the commanded joints, or the exported order
        self.order = np.arange(self.dim)
        if config.joint_names is not None:
            missing = [name for name in names if name not in config.joint_names]
            if missing:
                raise MetadataError(f"the policy commands joint(s) {missing}, absent from DeployConfig.joint_names")
            position = {name: i for i, name in enumerate(names)}
            self.order = np.array([position[name] for name in config.joint_names if name in position], dtype=np.intp)
        self.identity_order = bool((self.order == np.arange(self.dim)).all())
        self.joint_names: list[str] = [names[i] for i in self.order]
        """Joint names of the targets :meth:`__call__` returns, in that order."""
        self.scale, self.offset = scale[self.order], offset[self.order]
        self.lower, self.upper = lower[self.order], upper[self.order]
        self.max_rate = None
        if config.max_target_rate is not None:
            self.max_rate = np.broadcast_to(np.asarray(config.max_target_rate, dtype=np.float64), (self.dim,)).copy()
            if (self.max_rate <= 0).any():
                raise MetadataError(f"DeployConfig.max_target_rate must be > 0, got {config.max_target_rate}")
        self.default_targets = self.targets(np.zeros((1, self.dim), dtype=np.float32), previous=None)
        """The targets of a zero action (the default pose for position targets): the safe output before any step."""

    def clipped(self, raw: np.ndarray) -> np.ndarray:
        """The raw action after rsl-rl's ``clip_actions``, shape (1, dim): what the env received (``last_action``)."""
        return raw.copy() if self.clip_actions is None else np.clip(raw, -self.clip_actions, self.clip_actions)

    def targets(self, clipped: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
        """Joint targets (dim,) float64 in output order from a clipped raw action; rate-limited against
        ``previous``."""
        raw = clipped.reshape(-1)
        if not self.identity_order:
            raw = raw[self.order]
        targets = np.multiply(raw, self.scale, dtype=np.float64)
        targets += self.offset
        np.maximum(targets, self.lower, out=targets)
        np.minimum(targets, self.upper, out=targets)
        if self.max_rate is not None and previous is not None:
            np.maximum(targets, previous - self.max_rate, out=targets)
            np.minimum(targets, previous + self.max_rate, out=targets)
        return targets
