"""What each per-step key of a dataset holds: its shape, dtype and unit.

Keys are paths inside an episode's HDF5 group, as in robomimic / Isaac Lab Mimic datasets: ``obs/<group>``,
``actions``, ``rewards``, ``dones``, ``states/<name>``, ``labels/<name>``. The first path component says what
the key is (its *group*): ``obs``, ``states``, ``labels``, ``actions`` or, for anything else, ``other``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

KEY_GROUPS = ("obs", "states", "labels", "actions", "other")
"""The groups a per-step key belongs to, in the order summaries list them."""

RESERVED_ROOTS = ("dr",)
"""First path components a per-step key may not use: ``dr/`` holds an episode's domain-randomization parameters."""


@dataclass(frozen=True)
class KeySpec:
    """Shape, dtype and unit of one per-step key, for one env and one step."""

    shape: tuple[int, ...]
    """Shape of one step of one env, without the env and time dimensions: ``(24,)``, ``(4, 3)``, ``()`` for a
    scalar per step."""
    dtype: str = "float32"
    """NumPy dtype name of the stored values: ``float32``, ``float64``, ``bool``, ``int64``, ``uint8``..."""
    unit: str = ""
    """Physical unit of the values, e.g. ``m/s``, ``N``, ``1`` for dimensionless; ``mixed`` (explained in
    :attr:`description`) for a concatenated observation group. Recorded in the manifest."""
    description: str = ""
    """Free text recorded in the manifest: what the key holds, the frame it is expressed in."""

    def __post_init__(self) -> None:
        shape = tuple(int(size) for size in self.shape)
        if any(size < 0 for size in shape):
            raise ValueError(f"KeySpec shape {shape} has a negative size")
        object.__setattr__(self, "shape", shape)
        object.__setattr__(self, "dtype", np.dtype(self.dtype).name)

    def to_json(self, key: str) -> dict[str, Any]:
        """The manifest entry of ``key``: group, shape, dtype, unit and description."""
        return {
            "group": key_group(key),
            "shape": list(self.shape),
            "dtype": self.dtype,
            "unit": self.unit,
            "description": self.description,
        }

    @staticmethod
    def from_json(entry: Mapping[str, Any]) -> KeySpec:
        """The spec of a manifest entry written by :meth:`to_json`."""
        return KeySpec(tuple(entry["shape"]), entry["dtype"], entry.get("unit", ""), entry.get("description", ""))


def key_group(key: str) -> str:
    """The group of a per-step key: ``obs``, ``states``, ``labels``, ``actions`` or ``other``."""
    root = key.split("/", 1)[0]
    return root if root in KEY_GROUPS[:-1] else "other"


def validate_key_specs(key_specs: Mapping[str, KeySpec]) -> dict[str, KeySpec]:
    """``key_specs`` as a plain dict, after checking that it is non-empty, that every key is a clean relative path
    not under a reserved root, and that no key is the parent of another (an HDF5 path is a dataset or a group).

    Raises:
        ValueError: naming the offending key.
    """
    if not key_specs:
        raise ValueError("key_specs is empty: a dataset needs at least one per-step key, e.g. 'actions'")
    for key, spec in key_specs.items():
        parts = key.split("/")
        if not key or any(not part or part in (".", "..") for part in parts):
            raise ValueError(f"key {key!r} is not a relative path like 'obs/policy'")
        if parts[0] in RESERVED_ROOTS:
            raise ValueError(f"key {key!r} uses the reserved root {parts[0]!r}/ (domain-randomization parameters)")
        if not isinstance(spec, KeySpec):
            raise ValueError(f"key {key!r}: expected a KeySpec, got {type(spec).__name__}")
    for key in key_specs:
        for other in key_specs:
            if other.startswith(key + "/"):
                raise ValueError(f"key {key!r} is the parent of key {other!r}: a path is either a dataset or a group")
    return dict(key_specs)


def key_specs_from_example(
    example: Mapping[str, Any], units: Mapping[str, str] | None = None, descriptions: Mapping[str, str] | None = None
) -> dict[str, KeySpec]:
    """Key specs read off one batched step, e.g. the first one a rollout produces.

    Args:
        example: per-step arrays or tensors keyed like the dataset, each of shape (num_envs, ...).
        units: unit of each key; keys not listed get ``""``.
        descriptions: description of each key; keys not listed get ``""``.
    """
    units = units or {}
    descriptions = descriptions or {}
    return {
        key: KeySpec(
            shape=tuple(value.shape[1:]),
            dtype=str(value.dtype).removeprefix("torch."),
            unit=units.get(key, ""),
            description=descriptions.get(key, ""),
        )
        for key, value in example.items()
    }
