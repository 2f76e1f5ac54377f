"""Assembling the policy's flat observation from named terms, as Isaac Lab's observation manager does.

For each term, in the exported order: the raw value (the term function's output, in its physical unit) is clipped,
then scaled, then pushed into the term's history (the first frame after a reset fills the whole history, as Isaac
Lab's ``CircularBuffer`` does), and the frames are laid out oldest to newest, term-major or time-major.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .errors import BadObservation, MetadataError

FLOAT_KINDS = ("f",)


class _Term:
    """One observation term: where its frames go and how a raw value becomes a frame."""

    def __init__(self, spec: dict, robot_joint_index: dict[str, int] | None):
        self.name: str = spec["name"]
        self.size = int(np.prod(spec["shape"]))
        self.history = max(int(spec.get("history_length", 0)), 1)
        self.joint_names: list[str] | None = spec.get("joint_names")
        self.source: str = spec.get("source", "robot")
        clip = spec.get("clip")
        self.clip = None if clip is None else (float(clip[0]), float(clip[1]))
        scale = spec.get("scale")
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float32)
        # joint-indexed arrays in the robot's order: the positions of this term's joints in that order
        self.gather: np.ndarray | None = None
        self.robot_size: int | None = None
        if self.joint_names is not None and robot_joint_index is not None:
            missing = [name for name in self.joint_names if name not in robot_joint_index]
            if missing:
                raise MetadataError(
                    f"observation term '{self.name}' uses joint(s) {missing} absent from DeployConfig.joint_names"
                )
            self.gather = np.array([robot_joint_index[name] for name in self.joint_names], dtype=np.intp)
            self.robot_size = len(robot_joint_index)
        self.shapes = {(self.size,), (1, self.size)} | ({()} if self.size == 1 else set())
        self.frames = np.zeros((self.history, self.size), dtype=np.float32)
        self.fresh = True

    def frame(self, value) -> np.ndarray:
        """The raw value checked and turned into one clipped, scaled frame, shape (size,)."""
        if isinstance(value, Mapping):
            value = self._from_joint_dict(value)
        if not isinstance(value, np.ndarray | float | int) or isinstance(value, bool):
            raise BadObservation(f"term '{self.name}': expected a float numpy array, got {type(value).__name__}")
        value = np.asarray(value)
        if value.dtype.kind not in FLOAT_KINDS:
            raise BadObservation(f"term '{self.name}': expected float32 or float64, got dtype {value.dtype}")
        if self.gather is not None and value.shape == (self.robot_size,):
            value = value[self.gather]
        elif value.shape not in self.shapes:
            expected = (self.robot_size,) if self.gather is not None else (self.size,)
            raise BadObservation(f"term '{self.name}': expected shape {expected}, got {value.shape}")
        frame = value.reshape(self.size).astype(np.float32)
        if not np.isfinite(frame).all():
            raise BadObservation(f"term '{self.name}': non-finite value {frame.tolist()}")
        if self.clip is not None:
            np.clip(frame, self.clip[0], self.clip[1], out=frame)
        if self.scale is not None:
            frame *= self.scale
        return frame

    def _from_joint_dict(self, value: Mapping) -> np.ndarray:
        if self.joint_names is None:
            raise BadObservation(f"term '{self.name}' is not joint-indexed; pass an array of shape ({self.size},)")
        missing = [name for name in self.joint_names if name not in value]
        extra = [name for name in value if name not in self.joint_names]
        if missing or extra:
            raise BadObservation(
                f"term '{self.name}': joints missing {missing}, unexpected {extra}; expected {self.joint_names}"
            )
        return np.array([value[name] for name in self.joint_names], dtype=np.float64)

    def pending(self, frame: np.ndarray) -> np.ndarray:
        """The history with ``frame`` appended, shape (history, size), without storing it."""
        if self.fresh:
            return np.broadcast_to(frame, self.frames.shape)
        if self.history == 1:
            return frame.reshape(1, -1)
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
        self.terms = [_Term(term, index) for term in spec["terms"]]
        self.size = int(spec["size"])
        self.time_major = spec.get("history_order", "term") == "time"
        self.robot_terms = {term.name for term in self.terms if term.source == "robot"}
        self.internal_terms = {term.name for term in self.terms if term.source != "robot"}
        total = sum(term.size * term.history for term in self.terms)
        if total != self.size:
            raise MetadataError(f"observation terms add up to {total} values, the network reads {self.size}")
        self.buffer = np.zeros((1, self.size), dtype=np.float32)

    @property
    def term_names(self) -> list[str]:
        """Names of the terms the caller provides, in the exported order."""
        return [term.name for term in self.terms if term.source == "robot"]

    def frames(self, obs_terms: Mapping, last_action: np.ndarray) -> list[np.ndarray]:
        """Check every term and return one frame per term (nothing is stored: a bad term changes no state)."""
        names = obs_terms.keys()
        if names != self.robot_terms:
            missing = sorted(self.robot_terms - names)
            extra = sorted(set(names) - self.robot_terms)
            hint = f" ({', '.join(sorted(self.internal_terms))} supplied by the runtime)" if self.internal_terms else ""
            raise BadObservation(f"observation terms missing {missing}, unexpected {extra}{hint}")
        return [
            term.frame(obs_terms[term.name]) if term.source == "robot" else last_action.reshape(-1)
            for term in self.terms
        ]

    def assemble(self, frames: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The flat observation, shape (1, size), with the frames appended to the histories, and those histories
        (pass them to :meth:`commit` once the step succeeded)."""
        histories = [term.pending(frame) for term, frame in zip(self.terms, frames, strict=True)]
        if self.time_major:
            self.buffer[0] = np.concatenate(histories, axis=1).reshape(-1)
            return self.buffer, histories
        start = 0
        for history in histories:
            stop = start + history.size
            self.buffer[0, start:stop] = history.reshape(-1)
            start = stop
        return self.buffer, histories

    def commit(self, histories: list[np.ndarray]) -> None:
        """Store the histories of a successful step."""
        for term, history in zip(self.terms, histories, strict=True):
            term.commit(history)

    def reset(self) -> None:
        """Forget the histories (the next frame fills them)."""
        for term in self.terms:
            term.fresh = True
