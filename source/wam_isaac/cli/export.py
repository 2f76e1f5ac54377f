"""``wam export``: an rsl-rl run checkpoint -> ``policy.onnx`` + ``metadata.json`` for the deploy runtime.

The policy graph holds the observation normalizer and the mean action, with a dynamic batch dimension (opset 17,
IR 8); the metadata (also embedded in the ONNX file) describes the observation terms, the action pipeline (applied
by the runtime), joint order, PD gains, control period and the domain randomization trained on. Before anything is
published, ``onnx.checker`` runs and onnxruntime must match torch within 1e-5 on random observations and on
observations recorded from a short rollout of the task's env; on any failure ``--out`` is left as it was.
"""

from __future__ import annotations

import argparse

from .common import positive_int, resolve_device
from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("export", help="export a policy to ONNX for the deploy runtime", description=__doc__)
    parser.add_argument(
        "--checkpoint", required=True, help="rsl-rl checkpoint, e.g. logs/rsl_rl/<exp>/<run>/model_99.pt"
    )
    parser.add_argument("--out", required=True, help="export directory (created; replaced only with --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out once the export passed")
    parser.add_argument("--device", default=None, help="device of the env and policy during export (default: cpu)")
    parser.add_argument("--num_envs", type=positive_int, default=8, help="envs of the recording rollout")
    parser.add_argument("--samples", type=positive_int, default=1000, help="random and recorded observations checked")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..export import ExportError, check_out, export_checkpoint, read_run

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    device = resolve_device(args.device or "cpu")
    try:
        check_out(args.out, args.overwrite)
        read_run(args.checkpoint)
        result = export_checkpoint(
            args.checkpoint, args.out, args.overwrite, device=device, num_envs=args.num_envs, samples=args.samples
        )
    except ExportError as error:
        raise UsageError(str(error)) from None
    policy = result.metadata["policy"]
    print(
        f"[wam] exported {result.metadata['task']} to {result.out}: policy.onnx (opset {policy['opset']}, "
        f"IR {policy['ir_version']}), metadata.json; onnxruntime vs torch max |diff| "
        f"{result.parity_random:.3g} on {args.samples} random, {result.parity_recorded:.3g} on "
        f"{result.metadata['validation']['recorded']['count']} recorded observations"
    )
    return 0
