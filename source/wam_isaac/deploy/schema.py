"""The export format shared by ``wam export`` (writer) and the deploy runtime (reader).

An export directory holds ``policy.onnx`` and ``metadata.json``. The metadata (schema ``wam_isaac.export``, version
:data:`SCHEMA_VERSION`) is JSON with full-precision floats; the same JSON, without its ``files`` entry (a file cannot
hold its own checksum), is embedded in ``policy.onnx`` as the ``metadata_props`` entry :data:`METADATA_PROPS_KEY`.
Top-level keys:

- ``schema``, ``schema_version``, ``task``, ``created_at``, ``source`` (checkpoint, iteration, run directory);
- ``policy``: file, opset, IR version, input/output names and shapes (batch dimension ``"batch"``),
  ``recurrent`` (``null`` or type, layers, hidden size, state input/output names), ``normalizer_in_graph``,
  ``deterministic``, ``action_pipeline`` (``"runtime"``: clip, scale and offset are applied by the runtime);
- ``observation``: group, size, ``history_order`` (``"term"``: each term's frames oldest to newest, term after term;
  ``"time"``: frame after frame), and ``terms`` in input order, each with ``name``, ``slice`` ([start, stop) in the
  flat input), ``shape`` (one frame), ``history_length`` (0: no history), ``func``, ``unit``, ``clip`` and
  ``scale`` (applied in this order to the raw term, as Isaac Lab does), ``noise`` and ``delay`` trained with,
  ``joint_names`` (joint-indexed terms) and ``source`` (``"robot"``, or ``"last_action"``: the runtime feeds its own
  previous action);
- ``action``: ``dim``, ``clip_actions`` (rsl-rl's clip of the raw action), ``joint_names``, ``terms`` (name, kind,
  unit, slice, joint names, per-joint ``scale``, ``offset`` and ``clip``: target = clip(raw * scale + offset)),
  ``limits`` (``lower``/``upper`` per target);
- ``control``: physics ``dt`` [s], ``decimation``, ``control_period`` [s];
- ``robot``: articulation joint names, ``default_joint_pos``, ``pd_gains`` (stiffness, damping per joint as the
  actuators apply them), effort and velocity limits, actuator groups;
- ``domain_randomization``: event terms (mode, function, parameters) and action-pipeline randomization;
- ``policy`` and ``observation`` are ``null`` in a world-model-only export;
- ``world_model``: ``null``, or ``world_model.onnx``'s entry (see :mod:`wam_isaac.export.world_model_onnx`): inputs and
  outputs with shapes, ``history`` (the window), ``trunk``, ``ensemble``, ``recurrent``; ``state`` (the
  ``world_model`` group's terms in order, each with its slices of the state and change vectors, ``rotation`` (its
  change is a rotation vector), ``quaternion`` (``"xyzw"``) and ``unit``; ``delta``: what the change means),
  ``instruction`` and ``action`` (sizes, meaning), ``monitor`` (the surprise monitor's calibration: statistic,
  per-term scales, threshold, target and measured false-alarm rates) and its own ``validation``;
- ``versions``: package versions; ``files``: ``{name: {"sha256", "bytes"}}`` (``metadata.json`` excluded).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import MetadataError

SCHEMA = "wam_isaac.export"
"""Value of the ``schema`` key."""

SCHEMA_VERSION = 1
"""Version of the layout described above; readers refuse other versions."""

METADATA_FILE = "metadata.json"
POLICY_FILE = "policy.onnx"
METADATA_PROPS_KEY = "wam_isaac.metadata"
"""Key of the ONNX ``metadata_props`` entry holding the metadata JSON (without ``files``)."""

REQUIRED_KEYS = ("task", "policy", "observation", "action", "control", "robot", "files")


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def embedded_metadata(metadata: dict) -> dict:
    """The part of the metadata embedded in the ONNX file: everything but ``files``."""
    return {key: value for key, value in metadata.items() if key != "files"}


def load_metadata(export_dir: str | Path, verify_checksums: bool = True) -> dict:
    """Read and check ``metadata.json`` of an export directory.

    Raises:
        MetadataError: missing file, unknown schema or version, missing key, or a file whose sha256 differs.
    """
    export_dir = Path(export_dir)
    path = export_dir / METADATA_FILE
    if not path.is_file():
        raise MetadataError(f"{export_dir} holds no {METADATA_FILE}; expected a directory written by `wam export`")
    try:
        metadata = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise MetadataError(f"{path} is not valid JSON: {error}") from None
    if metadata.get("schema") != SCHEMA or metadata.get("schema_version") != SCHEMA_VERSION:
        raise MetadataError(
            f"{path}: schema {metadata.get('schema')!r} version {metadata.get('schema_version')!r}; "
            f"this runtime reads {SCHEMA!r} version {SCHEMA_VERSION}"
        )
    missing = [key for key in REQUIRED_KEYS if key not in metadata]
    if missing:
        raise MetadataError(f"{path} lacks the key(s) {', '.join(missing)}")
    if verify_checksums:
        for name, entry in metadata["files"].items():
            file = export_dir / name
            if not file.is_file():
                raise MetadataError(f"{export_dir} lacks {name}, listed in {METADATA_FILE}")
            if sha256_file(file) != entry["sha256"]:
                raise MetadataError(f"{file}: sha256 differs from {METADATA_FILE} (file changed after export)")
    return metadata
