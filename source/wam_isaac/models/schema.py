"""What a WAM reads and predicts, taken from a dataset's manifest: the state it predicts, the instruction it is
conditioned on, the actions, and the auxiliary targets.

- state: every ``obs/world_model/<term>`` key of the dataset (the task's ``world_model`` observation group),
  flattened and concatenated in manifest order; terms named ``*_quat`` (xyzw) are renormalized after every
  predicted step;
- instruction: every ``obs/instruction/<term>`` key (the goal, a velocity command); none for tasks without one;
- actions: ``actions``; reward: ``rewards``; termination: ``labels/flags/terminated``;
- contacts: every ``labels/contact/.../flag``-like key whose name ends in ``flag`` (optional).

A checkpoint stores its schema; :meth:`WamSchema.check_compatible` compares it with a dataset's and names the first
key that differs.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

STATE_PREFIX = "obs/world_model/"
"""Dataset keys of the predicted state."""
INSTRUCTION_PREFIX = "obs/instruction/"
"""Dataset keys of the instruction."""
ACTION_KEY = "actions"
REWARD_KEY = "rewards"
TERMINATION_KEY = "labels/flags/terminated"


class SchemaError(ValueError):
    """A dataset cannot feed a model: a key is missing or has another shape."""


@dataclass(frozen=True)
class TermSlice:
    """Where a state term sits in the flat state vector."""

    key: str
    """Dataset key, e.g. ``obs/world_model/cube_pos``."""
    start: int
    """First index in the flat state vector."""
    size: int
    """Number of entries."""

    @property
    def name(self) -> str:
        """The term's name, e.g. ``cube_pos``."""
        return self.key.rsplit("/", 1)[-1]

    @property
    def stop(self) -> int:
        return self.start + self.size


@dataclass(frozen=True)
class WamSchema:
    """The keys and shapes a model was built for."""

    state_keys: dict[str, list[int]]
    """Predicted state terms and their per-step shapes, in order."""
    instruction_keys: dict[str, list[int]] = field(default_factory=dict)
    """Instruction terms and their per-step shapes, in order."""
    action_shape: list[int] = field(default_factory=list)
    """Shape of one action."""
    contact_keys: dict[str, list[int]] = field(default_factory=dict)
    """Contact-flag label keys (auxiliary targets) and their shapes."""
    has_termination: bool = True
    """Whether the dataset has ``labels/flags/terminated`` (termination head target)."""

    @staticmethod
    def from_manifest(manifest: Mapping[str, Any]) -> WamSchema:
        """The schema of a dataset, read from its manifest.

        Raises:
            SchemaError: the dataset has no ``obs/world_model/`` keys or no ``actions``.
        """
        keys = manifest["keys"]
        state = {key: list(entry["shape"]) for key, entry in keys.items() if key.startswith(STATE_PREFIX)}
        if not state:
            raise SchemaError(
                f"dataset of task {manifest.get('task_id', '?')} has no '{STATE_PREFIX}*' keys: regenerate it with a"
                " task that declares a world_model observation group (wam generate)"
            )
        if ACTION_KEY not in keys:
            raise SchemaError("dataset has no 'actions' key")
        return WamSchema(
            state_keys=state,
            instruction_keys={k: list(e["shape"]) for k, e in keys.items() if k.startswith(INSTRUCTION_PREFIX)},
            action_shape=list(keys[ACTION_KEY]["shape"]),
            contact_keys={
                k: list(e["shape"]) for k, e in keys.items() if k.startswith("labels/contact/") and k.endswith("flag")
            },
            has_termination=TERMINATION_KEY in keys,
        )

    @staticmethod
    def from_observations(obs: Mapping[str, Any], action_shape: list[int]) -> WamSchema:
        """The schema of a live env: its ``world_model`` and ``instruction`` observation groups (term by term, in the
        env's order, which is the order ``wam generate`` stores them in) and the action shape, keyed as a dataset of
        the same task is (``obs/world_model/<term>``, ``obs/instruction/<term>``). A live env has no contact labels
        (``contact_keys`` empty) and always knows its terminations.

        Args:
            obs: the env's observations (a dict or TensorDict of groups; the two groups above not concatenated).
            action_shape: shape of one action, e.g. ``[3]``.

        Raises:
            SchemaError: the env has no term-by-term ``world_model`` group.
        """
        groups = {}
        for prefix in (STATE_PREFIX, INSTRUCTION_PREFIX):
            name = prefix.split("/")[1]
            terms = obs[name] if name in obs.keys() else None  # noqa: SIM118 (TensorDicts too)
            if terms is not None and not hasattr(terms, "items"):
                raise SchemaError(f"observation group '{name}' is concatenated; a WAM needs its terms separate")
            items = terms.items() if terms is not None else []
            groups[prefix] = {f"{prefix}{term}": list(value.shape[1:]) for term, value in items}
        if not groups[STATE_PREFIX]:
            raise SchemaError("the env has no 'world_model' observation group: a WAM predicts and reads that group")
        state, instruction = groups[STATE_PREFIX], groups[INSTRUCTION_PREFIX]
        return WamSchema(state_keys=state, instruction_keys=instruction, action_shape=list(action_shape))

    def check_observations_compatible(self, env_schema: WamSchema, where: str = "task's observation groups") -> None:
        """Like :meth:`check_compatible` for a schema built by :meth:`from_observations`: states, instruction and
        actions must match; contact labels (a dataset's, not an env's observations) are not compared."""
        WamSchema(
            state_keys=self.state_keys, instruction_keys=self.instruction_keys, action_shape=self.action_shape
        ).check_compatible(env_schema, where)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> WamSchema:
        return WamSchema(**{name: data[name] for name in WamSchema.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def check_compatible(self, other: WamSchema, where: str = "dataset") -> None:
        """Raise a :class:`SchemaError` naming the first key whose presence or shape differs in ``other``."""
        for mine, theirs in (
            (self.state_keys, other.state_keys),
            (self.instruction_keys, other.instruction_keys),
            (self.contact_keys, other.contact_keys),
            ({ACTION_KEY: self.action_shape}, {ACTION_KEY: other.action_shape}),
        ):
            for key, shape in mine.items():
                if key not in theirs:
                    raise SchemaError(f"{where} has no key '{key}' (the model was trained with it, shape {shape})")
                if list(theirs[key]) != list(shape):
                    raise SchemaError(f"key '{key}' has shape {theirs[key]} in the {where}, the model expects {shape}")
            extra = [key for key in theirs if key not in mine]
            if extra:
                raise SchemaError(f"{where} has key '{extra[0]}' that the model was not trained with")

    # sizes and layout ---------------------------------------------------------------------------------------------
    @property
    def state_dim(self) -> int:
        return sum(math.prod(shape) for shape in self.state_keys.values())

    @property
    def instruction_dim(self) -> int:
        return sum(math.prod(shape) for shape in self.instruction_keys.values())

    @property
    def action_dim(self) -> int:
        return math.prod(self.action_shape)

    @property
    def contact_dim(self) -> int:
        return sum(math.prod(shape) for shape in self.contact_keys.values())

    def state_slices(self) -> list[TermSlice]:
        """Each state term's place in the flat state vector."""
        slices, start = [], 0
        for key, shape in self.state_keys.items():
            size = math.prod(shape)
            slices.append(TermSlice(key, start, size))
            start += size
        return slices

    def quaternion_slices(self) -> list[TermSlice]:
        """State terms holding quaternions (name ending in ``_quat``, 4 entries, xyzw)."""
        return [s for s in self.state_slices() if s.name.endswith("quat") and s.size == 4]

    def term(self, name: str) -> TermSlice:
        """The state term called ``name`` (e.g. ``cube_pos``).

        Raises:
            KeyError: no state term has that name.
        """
        for term in self.state_slices():
            if term.name == name:
                return term
        raise KeyError(f"no state term '{name}' (terms: {[s.name for s in self.state_slices()]})")

    def dataset_keys(self) -> list[str]:
        """Every dataset key a training window needs."""
        keys = [*self.state_keys, *self.instruction_keys, ACTION_KEY, REWARD_KEY, *self.contact_keys]
        return keys + ([TERMINATION_KEY] if self.has_termination else [])
