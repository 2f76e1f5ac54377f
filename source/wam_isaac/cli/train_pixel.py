"""``wam train-pixel``: train a pixel world model (``--model world``) or a pixel WAM (``joint``: action and value heads
on the shared latent; ``cascaded``: predicted frames, then inverse dynamics) on a dataset's camera frames (e.g. ``wam
generate --task WAM-Push-Cube-Camera``), with a state read-out head when the dataset has the task's ``world_model``
states, and score its predicted frames on held-out envs: PSNR and SSIM at horizons 1, 8 and 32 beside the
copy-last-frame baseline, written to ``--out/eval.json`` with the model (``model.pt``, which ``wam eval`` reads) and a
picture of true, predicted and copy-last frames per horizon for the held-out window with the most motion
(``strip.png``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from .common import positive_int, resolve_device
from .errors import UsageError


def non_negative_float(text: str) -> float:
    """argparse type: a float >= 0."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0.0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer >= 0")
    return value


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train-pixel", help="train a pixel world model on camera frames, score PSNR/SSIM", description=__doc__
    )
    parser.add_argument("--data", required=True, help="dataset directory with camera frames (wam generate)")
    parser.add_argument("--out", required=True, help="run directory (model.pt, eval.json)")
    parser.add_argument(
        "--model", choices=("world", "joint", "cascaded"), default="world", help="pixel world model or WAM kind"
    )
    parser.add_argument(
        "--head_weight",
        type=non_negative_float,
        default=0.1,
        help="weight of the read-out and behaviour-cloning losses against the frame losses (value: a tenth of it)",
    )
    parser.add_argument(
        "--ungated_weight",
        type=non_negative_float,
        default=0.0,
        help="weight of the ungated prediction's squared error (keeps the decoded change trained under the gate)",
    )
    parser.add_argument("--no_readout", action="store_true", help="no state read-out head")
    parser.add_argument("--no_gate", action="store_true", help="add the whole decoded change (no change gate)")
    parser.add_argument("--updates", type=positive_int, default=500, help="Adam updates")
    parser.add_argument(
        "--pretrain_updates",
        type=non_negative_int,
        default=0,
        help="reconstruction-only updates of the encoder and decoder first (0: none)",
    )
    parser.add_argument("--batch", type=positive_int, default=16, help="windows per update")
    parser.add_argument("--history", type=positive_int, default=4, help="frames the model conditions on")
    parser.add_argument("--forecast", type=positive_int, default=8, help="steps rolled out in training windows")
    parser.add_argument(
        "--ssim_weight",
        type=non_negative_float,
        default=0.0,
        help="weight of 1 - SSIM of the predicted frames in the loss (0: MSE only)",
    )
    parser.add_argument("--frame_key", default="obs/camera", help="dataset key of the frames")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, the initialization, the windows")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data import DatasetError, load_manifest
    from ..data.frames import frame_keys
    from ..models.pixel_training import (
        PixelTrainCfg,
        evaluate_pixel_world_model,
        save,
        train_pixel_world_model,
    )
    from ..models.pixel_wam import PixelWamCfg
    from ..models.pixel_world_model import PixelWorldModelCfg

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    try:
        manifest = load_manifest(args.data)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    frames = frame_keys(manifest["keys"])
    if args.frame_key not in frames:
        raise UsageError(f"{args.data} has no frames under {args.frame_key!r}; its frame keys: {frames or 'none'} "
                         "(generate with a camera task, e.g. --task WAM-Push-Cube-Camera)")  # fmt: skip
    height, width, channels = manifest["keys"][args.frame_key]["shape"]
    if height != width:
        raise UsageError(f"{args.frame_key} frames are {height}x{width}: the pixel world model needs square frames")
    model = PixelWorldModelCfg(image_size=height, image_channels=channels, change_gate=not args.no_gate,
                               ungated_weight=args.ungated_weight)  # fmt: skip
    weight = args.head_weight
    wam = PixelWamCfg(kind=args.model, readout=not args.no_readout, readout_weight=weight, action_weight=weight,
                      value_weight=weight / 10)  # fmt: skip
    cfg = PixelTrainCfg(args.frame_key, args.history, args.forecast, args.batch, args.updates,
                        pretrain_updates=args.pretrain_updates, ssim_weight=args.ssim_weight, seed=args.seed,
                        model=model, wam=wam)  # fmt: skip
    device = resolve_device(args.device)
    try:
        trained, stats = train_pixel_world_model(args.data, cfg, device)
        strip = Path(args.out) / "strip.png"
        strip.parent.mkdir(parents=True, exist_ok=True)
        scores = evaluate_pixel_world_model(trained, args.data, cfg, device, strip_path=strip)
        report = {"dataset": str(args.data), **stats, **scores}
    except ValueError as error:
        raise UsageError(str(error)) from None
    path = save(args.out, trained, cfg, report)
    for horizon, figures in report["horizons"].items():
        print(f"[wam] horizon {horizon}: " + ", ".join(f"{k} {v:.4f}" for k, v in figures.items()))
    print(f"[wam] {report['windows']} held-out windows; {stats['frames_per_s']:.0f} training frames/s; wrote {path}")
    print(json.dumps({"eval": str(path)}))
    return 0
