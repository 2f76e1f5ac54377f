"""Assembling the policy's flat observation from named terms, as Isaac Lab's observation manager does.

For each term, in the exported order: the raw value (the term function's output, in its physical unit) is clipped,
then scaled, then pushed into the term's history (the first frame after a reset fills the whole history, as Isaac
Lab's ``CircularBuffer`` does), and the frames are laid out oldest to newest, term-major or time-major.

The checks and the clip/scale run on one staging vector holding every term's current frame: a step costs a few
numpy calls per term, not per element.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import BadObservation, MetadataError


class _Term:
    """One observation term: where its frame goes in the staging vector, and how a raw value is checked."""

    def __init__(self, spec: dict, start: int, robot_joint_index: dict[str, int] | None):
        self.name: str = spec["name"]
        self.size = int(np.prod(spec["shape"]))
        self.history = max(int(spec.get("history_length", 0)), 1)
        self.joint_names: list[str] | None = spec.get("joint_names")
        self.source: str = spec.get("source", "robot")
        self.frame = slice(start, start + self.size)
        """Where this term's current frame sits in the staging vector."""
        self.shapes = {(self.size,), (1, self.size)} | ({()} if self.size == 1 else set())
        # joint-indexed arrays in the robot's order: the positions of this term's joints in that order
        self.gather: np.ndarray | None = None
        self.robot_shape: tuple[int] | None = None
        if self.joint_names is not None and robot_joint_index is not None:
            missing = [name for name in self.joint_names if name not in robot_joint_index]
            if missing:
                raise MetadataError(
                    f"observation term '{self.name}' uses joint(s) {missing} absent from DeployConfig.joint_names"
                )
            self.gather = np.array([robot_joint_index[name] for name in self.joint_names], dtype=np.intp)
            self.robot_shape = (len(robot_joint_index),)
        self.frames = np.zeros((self.history, self.size), dtype=np.float32)
        self.fresh = True

    def write(self, value, staging: np.ndarray) -> None:
        """Check the raw value's type, dtype and shape and copy it into the staging vector (float32)."""
        if type(value) is not np.ndarray:
            value = self._coerce(value)
        if value.dtype.kind != "f":
            raise BadObservation(f"term '{self.name}': expected float32 or float64, got dtype {value.dtype}")
        shape = value.shape
        if self.gather is not None and shape == self.robot_shape:
            value = value[self.gather]
        elif shape not in self.shapes:
            expected = self.robot_shape if self.gather is not None else (self.size,)
            raise BadObservation(f"term '{self.name}': expected shape {expected}, got {shape}")
        staging[self.frame] = value.reshape(self.size)

    def _coerce(self, value) -> np.ndarray:
        if isinstance(value, Mapping):
            return self._from_joint_dict(value)
        if isinstance(value, float | np.floating):
            return np.asarray(value)
        raise BadObservation(f"term '{self.name}': expected a float numpy array, got {type(value).__name__}")

    def _from_joint_dict(self, value: Mapping) -> np.ndarray:
        if self.joint_names is None:
            raise BadObservation(f"term '{self.name}' is not joint-indexed; pass an array of shape ({self.size},)")
        missing = [name for name in self.joint_names if name not in value]
        extra = [name for name in value if name not in self.joint_names]
        if missing or extra:
            raise BadObservation(
                f"term '{self.name}': joints missing {missing}, unexpected {extra}; expected {self.joint_names}"
            )
        try:
            return np.array([value[name] for name in self.joint_names], dtype=np.float64)
        except (TypeError, ValueError):
            raise BadObservation(f"term '{self.name}': joint values must be floats") from None

    def pending(self, frame: np.ndarray) -> np.ndarray:
        """The history with ``frame`` appended, shape (history, size), without storing it."""
        if self.fresh:
            return np.broadcast_to(frame, self.frames.shape)
        return np.concatenate([self.frames[1:], frame.reshape(1, -1)])

    def commit(self, frames: np.ndarray) -> None:
        self.frames[:] = frames
        self.fresh = False


class ObservationAssembler:
    """Named raw terms -> the flat, float32 observation the network reads, shape (1, size).

    Args:
        spec: the metadata's ``observation`` entry.
        robot_joint_names: the robot's joint order (``DeployConfig.joint_names``) or ``None``.
    """

    def __init__(self, spec: dict, robot_joint_names: Sequence[str] | None = None):
        index = None if robot_joint_names is None else {name: i for i, name in enumerate(robot_joint_names)}
        self.terms: list[_Term] = []
        start = 0
        for term_spec in spec["terms"]:
            self.terms.append(_Term(term_spec, start, index))
            start += self.terms[-1].size
        self.size = int(spec["size"])
        total = sum(term.size * term.history for term in self.terms)
        if total != self.size:
            raise MetadataError(f"observation terms add up to {total} values, the network reads {self.size}")
        self.time_major = spec.get("history_order", "term") == "time"
        self.robot = [term for term in self.terms if term.source == "robot"]
        self.internal = [term for term in self.terms if term.source != "robot"]
        self.robot_names = {term.name for term in self.robot}
        self.has_history = any(term.history > 1 for term in self.terms)
        # clip then scale, as one vectorized operation over every term's frame
        lower, upper = np.full(start, -np.inf, np.float32), np.full(start, np.inf, np.float32)
        scale = np.ones(start, np.float32)
        for term_spec, term in zip(spec["terms"], self.terms, strict=True):
            if term_spec.get("clip") is not None:
                lower[term.frame], upper[term.frame] = term_spec["clip"]
            if term_spec.get("scale") is not None:
                scale[term.frame] = term_spec["scale"]
        self.clip = (lower, upper) if np.isfinite(lower).any() or np.isfinite(upper).any() else None
        self.scale = scale if (scale != 1.0).any() else None
        self.staging = np.zeros(start, dtype=np.float32)
        """Every term's current frame, in term order (the network input itself when no term has history)."""
        self.buffer = np.zeros((1, self.size), dtype=np.float32)
        """The network input; its memory never moves (bound to onnxruntime once)."""
        if not self.has_history:
            self.staging = self.buffer.reshape(-1)

    @property
    def term_names(self) -> list[str]:
        """Names of the terms the caller provides, in the exported order."""
        return [term.name for term in self.robot]

    def stage(self, obs_terms: Mapping, last_action: np.ndarray) -> None:
        """Check every term and write the current frames (clipped, scaled) into the staging vector.

        Raises:
            BadObservation: naming the missing, unexpected, mis-typed, mis-shaped or non-finite term.
        """
        if obs_terms.keys() != self.robot_names:
            missing = sorted(self.robot_names - obs_terms.keys())
            extra = sorted(set(obs_terms) - self.robot_names)
            internal = ", ".join(term.name for term in self.internal)
            hint = f" ({internal} supplied by the runtime)" if internal else ""
            raise BadObservation(f"observation terms missing {missing}, unexpected {extra}{hint}")
        staging = self.staging
        for term in self.robot:
            term.write(obs_terms[term.name], staging)
        if not np.isfinite(staging).all():  # before the clip, which would hide an infinity
            bad = next(t for t in self.robot if not np.isfinite(staging[t.frame]).all())
            raise BadObservation(f"term '{bad.name}': non-finite value {staging[bad.frame].tolist()}")
        for term in self.internal:
            staging[term.frame] = last_action.reshape(-1)
        if self.clip is not None:
            np.clip(staging, self.clip[0], self.clip[1], out=staging)
        if self.scale is not None:
            staging *= self.scale

    def assemble(self) -> list[np.ndarray] | None:
        """Lay the staged frames and the histories into :attr:`buffer`; returns the new histories, to pass to
        :meth:`commit` once the step succeeded (``None`` when no term keeps a history: nothing to store)."""
        if not self.has_history:
            return None
        histories = [term.pending(self.staging[term.frame]) for term in self.terms]
        if self.time_major:
            self.buffer[0] = np.concatenate(histories, axis=1).reshape(-1)
            return histories
        start = 0
        for history in histories:
            stop = start + history.size
            self.buffer[0, start:stop] = history.reshape(-1)
            start = stop
        return histories

    def commit(self, histories: list[np.ndarray] | None) -> None:
        """Store the histories of a successful step."""
        if histories is None:
            return
        for term, history in zip(self.terms, histories, strict=True):
            term.commit(history)

    def reset(self) -> None:
        """Forget the histories (the next frame fills them)."""
        for term in self.terms:
            term.fresh = True
