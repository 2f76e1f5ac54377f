"""Export of rsl-rl policies to ONNX with the metadata a robot needs (``wam export``); read by
:mod:`wam_isaac.deploy`. Importing this package does not start a simulator."""

from .errors import ExportError
from .exporter import ExportResult, check_out, export_checkpoint, export_env, load_policy, write_metadata
from .run_dir import RunInfo, read_run
