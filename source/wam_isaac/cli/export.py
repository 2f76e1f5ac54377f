"""``wam export``: a checkpoint -> ``policy.onnx`` (+ ``world_model.onnx``) + ``metadata.json`` for the deploy runtime.

``--checkpoint`` is an rsl-rl run checkpoint (``model_<i>.pt``; ``--world-model`` adds a ``wam train-model``
world model of the same task beside its policy) or a ``wam train-model`` checkpoint (a joint or cascaded WAM: its
action head as ``policy.onnx`` and its world model; a world model alone with ``--world-model-only``). The world model
comes with a surprise monitor calibrated on rollouts of the task under its training randomization.

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
        "--checkpoint",
        required=True,
        help="rsl-rl checkpoint (logs/rsl_rl/<exp>/<run>/model_99.pt) or wam train-model checkpoint (last.pt)",
    )
    parser.add_argument(
        "--world-model", default=None, help="wam train-model checkpoint to export beside an rsl-rl policy"
    )
    parser.add_argument(
        "--world-model-only", action="store_true", help="export a train-model checkpoint's world model without a policy"
    )
    parser.add_argument("--task", default=None, help="task of a train-model checkpoint (default: its dataset's task)")
    parser.add_argument("--out", required=True, help="export directory (created; replaced only with --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out once the export passed")
    parser.add_argument("--device", default=None, help="device of the env and policy during export (default: cpu)")
    parser.add_argument(
        "--num_envs",
        type=positive_int,
        default=32,
        help="envs of the recording rollouts (half calibrate the surprise monitor, half measure its false alarms)",
    )
    parser.add_argument("--samples", type=positive_int, default=1000, help="random and recorded observations checked")
    parser.add_argument(
        "--calibration_steps", type=positive_int, default=300, help="steps per env of the monitor's calibration"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..export import ExportError, check_out, export_checkpoint, read_run
    from ..export.wam_checkpoint import is_wam_checkpoint, read_wam_checkpoint

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    device = resolve_device(args.device or "cpu")
    try:
        check_out(args.out, args.overwrite)
        if not is_wam_checkpoint(args.checkpoint):
            read_run(args.checkpoint)  # one-line error for anything that is neither kind, before a simulator starts
        if args.world_model is not None:
            read_wam_checkpoint(args.world_model)
        result = export_checkpoint(
            args.checkpoint,
            args.out,
            args.overwrite,
            device=device,
            num_envs=args.num_envs,
            samples=args.samples,
            world_model=args.world_model,
            world_model_only=args.world_model_only,
            task=args.task,
            calibration_steps=args.calibration_steps,
        )
    except ExportError as error:
        raise UsageError(str(error)) from None
    metadata = result.metadata
    policy, world_model = metadata["policy"], metadata["world_model"]
    if policy is not None:
        print(
            f"[wam] exported {metadata['task']} to {result.out}: policy.onnx (opset {policy['opset']}, "
            f"IR {policy['ir_version']}), metadata.json; onnxruntime vs torch max |diff| "
            f"{result.parity_random:.3g} on {args.samples} random, {result.parity_recorded:.3g} on "
            f"{metadata['validation']['recorded']['count']} recorded observations"
        )
    if world_model is not None:
        check, monitor = world_model["validation"], world_model["monitor"]
        print(
            f"[wam] world_model.onnx ({world_model['trunk']}, ensemble {world_model['ensemble']}, history "
            f"{world_model['history']}): onnxruntime vs torch max |diff| {check['random']['max_abs_diff']:.3g} "
            f"(/ max(1, |value|): {check['random']['max_scaled_diff']:.3g}) on {check['random']['count']} random, "
            f"{check['recorded']['max_abs_diff']:.3g} ({check['recorded']['max_scaled_diff']:.3g}) on "
            f"{check['recorded']['count']} recorded windows; surprise monitor thresholds: jump "
            f"{monitor['threshold']:.4g}"
            + (f", stall {monitor['stall']['threshold']:.4g}" if monitor.get("stall") else "")
            + f", false alarms {monitor['false_alarm_rate_held_out']:.2%} per step on held-out rollouts "
            f"(target {monitor['false_alarm_rate_target']:.0%})"
        )
    return 0
