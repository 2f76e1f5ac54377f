"""Checkpoints of WAM training: written atomically, read without executing pickle code.

A checkpoint is a plain dict of tensors and Python scalars/lists/dicts (so ``torch.load(weights_only=True)`` can
read it): ``format`` and ``version`` (what it is), ``config`` (the resolved training config as a dict), ``schema``
(the keys the model was trained on), ``model``, ``optimizer``, ``scheduler`` state dicts, ``epoch`` (epochs
completed), ``rng`` (torch and NumPy generator states) and ``metrics`` (the last validation figures).
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT = "wam_isaac.checkpoint"
"""Value of the ``format`` entry of every checkpoint this project writes."""
VERSION = 1


class CheckpointError(ValueError):
    """A file is not a readable wam_isaac checkpoint."""


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format and version) to ``path`` atomically: a temp file in the same directory, fsync,
    then rename, so a crash leaves the previous checkpoint or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "wb") as file:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)
    return path


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``torch.load(weights_only=True)`` (no pickled code runs) and check it is ours.

    Raises:
        CheckpointError: missing file, not loadable as weights only, or not a wam_isaac checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError) as error:
        raise CheckpointError(
            f"'{path}' is not a wam_isaac checkpoint (refused to unpickle it as weights only: {_refusal(error)})"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"'{path}' is not a wam_isaac checkpoint (no format '{FORMAT}' entry)")
    if payload.get("version") != VERSION:
        raise CheckpointError(f"'{path}' has checkpoint version {payload.get('version')}; this build reads {VERSION}")
    return payload


def _refusal(error: Exception) -> str:
    """Why ``torch.load(weights_only=True)`` refused a file, in one line: the weights-only unpickler's reason (e.g.
    ``Unsupported global: GLOBAL _io.open ...``) rather than torch's preamble, which suggests loading the file with
    ``weights_only=False``."""
    text = str(error)
    marker = "WeightsUnpickler error:"
    if marker in text:
        reason = text.split(marker, 1)[1].strip().split(". ")[0].splitlines()[0].strip()
        if reason:
            return reason
    return text.strip().splitlines()[0] if text.strip() else type(error).__name__


def rng_state() -> dict[str, Any]:
    """The torch and NumPy global generator states, as tensors (loadable with weights_only)."""
    kind, keys, position, has_gauss, gauss = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": {
            "kind": kind,
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "position": int(position),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
    }


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    numpy = state["numpy"]
    keys = numpy["keys"].numpy().astype(np.uint32)
    np.random.set_state((numpy["kind"], keys, numpy["position"], numpy["has_gauss"], numpy["gauss"]))
