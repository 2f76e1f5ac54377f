"""``wam export-dataset``: write a dataset in the robomimic / Isaac Lab HDF5 layout (one group per episode, ``next_obs``
from the stored final states, ``format_version`` 1 so that Isaac Lab reads quaternions as the xyzw they are), for
robomimic's ``SequenceDataset`` and Isaac Lab's ``HDF5DatasetFileHandler``."""

from __future__ import annotations

import argparse
from pathlib import Path

from .errors import UsageError

FORMATS = ("robomimic",)


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "export-dataset", help="export a dataset for robomimic / Isaac Lab", description=__doc__
    )
    parser.add_argument("dataset", help="dataset directory (holding manifest.json)")
    parser.add_argument("--format", default="robomimic", help=f"output layout: {', '.join(FORMATS)}")
    parser.add_argument("--out", required=True, help="output HDF5 file (replaced if it exists)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data import DatasetError
    from ..data.export import export_robomimic

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    if args.format not in FORMATS:
        raise UsageError(f"unknown --format '{args.format}'; expected one of {', '.join(FORMATS)}")
    if not Path(args.out).parent.is_dir():
        raise UsageError(f"--out {args.out}: directory {Path(args.out).parent} does not exist")
    try:
        count = export_robomimic(args.dataset, args.out)
    except DatasetError as error:
        raise UsageError(f"cannot read dataset '{args.dataset}': {error}") from None
    print(f"[wam] exported {count} episodes of {args.dataset} to {args.out} ({args.format} layout)")
    return 0
