"""Where a pixel model's error is, by region of the frame, on WAM-Push-Cube-Camera frames: the arm, the cube and the
static rest, beside copy-last-frame, and the oracles that bound what predicting each region would gain.

Regions come from the frames' colours (:func:`segment`): the camera task renders flat colours with one ray per pixel,
so with the task's default colours (visual DR off, as in datasets generated without it) the masks are exact: cube
blue, goal disc green, table brown, sky (238, 238, 238) and the arm the rest (bluish greys). For a horizon with last
seen frame ``x_t`` and true frame ``x_{t+h}``: ``arm = arm(x_t) | arm(x_{t+h})``, ``cube = (cube(x_t) |
cube(x_{t+h})) & ~arm``, ``static`` the rest (:func:`region_split`). Oracles (:func:`oracles`): the true frame with
the cube copied from ``x_t`` (what predicting the arm alone would score) and with the arm copied (the cube alone).

Run on a trained model (the held-out windows ``wam eval`` scores)::

    python -m wam_isaac.evaluation.visual_regions --checkpoint RUN/model.pt --data DIR --out regions.json

Frames: uint8 (N, H, W, 3) as stored in datasets.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import torch

from ..models.pixel_world_model import to_float_frames


def segment(frames: torch.Tensor) -> dict[str, torch.Tensor]:
    """Boolean masks (N, H, W) ``arm`` and ``cube`` of uint8 RGB frames (N, H, W, 3) of WAM-Push-Cube-Camera with
    its default colours (module docstring)."""
    f = frames.int()
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    cube = (b > r + 40) & (b > g + 20)
    goal = (g > r + 50) & (g > b + 50)
    sky = (r >= 230) & (g >= 230) & (b >= 230)
    table = (r > b + 15) & ~goal
    return {"arm": ~(cube | goal | sky | table), "cube": cube}


def regions(true: torch.Tensor, last_seen: torch.Tensor) -> dict[str, torch.Tensor]:
    """Masks (N, H, W) ``arm``, ``cube`` and ``static`` of a horizon (module docstring); they partition the frame."""
    now, before = segment(true), segment(last_seen)
    arm = now["arm"] | before["arm"]
    cube = (now["cube"] | before["cube"]) & ~arm
    return {"arm": arm, "cube": cube, "static": ~(arm | cube)}


def region_split(predicted: torch.Tensor, true: torch.Tensor, last_seen: torch.Tensor) -> dict[str, dict[str, float]]:
    """Per region: its share of the pixels and its part of the mean squared error [0-1 units] of the predicted
    frames and of copy-last (the parts of each add up to the frames' mean squared error).

    Args:
        predicted: (N, H, W, 3) uint8 or (N, 3, H, W) float in [0, 1].
        true, last_seen: (N, H, W, 3) uint8.
    """
    masks = regions(true, last_seen)
    target = to_float_frames(true)
    errors = {"model": (to_float_frames(predicted) - target).square().mean(dim=1),
              "copy_last": (to_float_frames(last_seen) - target).square().mean(dim=1)}  # fmt: skip
    return {
        name: {"area": float(mask.float().mean()), **{k: float((e * mask).mean()) for k, e in errors.items()}}
        for name, mask in masks.items()
    }


def oracles(true: torch.Tensor, last_seen: torch.Tensor) -> dict[str, torch.Tensor]:
    """uint8 frames (N, H, W, 3): ``true_arm`` (the true frame with the cube's pixels, where the true arm is not,
    from the last seen frame: the arm predicted perfectly, the cube copied) and ``true_cube`` (the arm's pixels,
    where the true cube is not, from the last seen frame)."""
    now, before = segment(true), segment(last_seen)
    cube = (now["cube"] | before["cube"]) & ~now["arm"]
    arm = (now["arm"] | before["arm"]) & ~now["cube"]
    return {"true_arm": torch.where(cube[..., None], last_seen, true),
            "true_cube": torch.where(arm[..., None], last_seen, true)}  # fmt: skip


def psnr_of_mean(predicted: torch.Tensor, true: torch.Tensor) -> float:
    """PSNR [dB] of the mean squared error over all frames (windows weighed by their error, not by their dB; finite
    when some frames are exact)."""
    mse = (to_float_frames(predicted) - to_float_frames(true)).square().mean()
    return float(-10.0 * torch.log10(mse))


def analyse(scored: dict, horizons: Sequence[int]) -> dict:
    """Per horizon: :func:`region_split`, and the PSNR of the mean squared error of the model, copy-last, the two
    :func:`oracles` and the model on the arm's pixels only (copy-last elsewhere); ``scored`` as
    :func:`~.visual_eval.score_windows` returns it."""
    last = scored["last_seen"]
    figures = {}
    for column, horizon in enumerate(horizons):
        true, predicted = scored["true"][:, column], scored["predicted"][:, column]
        as_uint8 = (to_float_frames(predicted).movedim(-3, -1) * 255).round().to(torch.uint8)
        arm = regions(true, last)["arm"]
        candidates = {"model": as_uint8, "copy_last": last, **oracles(true, last),
                      "model_on_arm_only": torch.where(arm[..., None], as_uint8, last)}  # fmt: skip
        figures[str(horizon)] = {
            "regions": region_split(predicted, true, last),
            "psnr_of_mean_mse": {name: psnr_of_mean(frames, true) for name, frames in candidates.items()},
        }
    return figures


def main(argv: list[str] | None = None) -> int:
    from ..data import split_by_env
    from ..models.pixel_training import load_frame_episodes, load_pixel_model
    from .visual_eval import score_windows

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkpoint", required=True, help="a pixel model's model.pt (wam train-pixel)")
    parser.add_argument("--data", required=True, help="its training dataset (the held-out envs are scored)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--horizons", type=int, nargs="+", default=[1, 8, 32], help="steps ahead")
    parser.add_argument("--stride", type=int, default=8, help="steps between window starts (as wam eval)")
    args = parser.parse_args(argv)
    model, cfg, _ = load_pixel_model(args.checkpoint, "cpu")
    episodes = split_by_env(args.data, cfg.val_fraction, cfg.seed)[1]
    data = load_frame_episodes(args.data, episodes, cfg.frame_key, model.schema)
    windows = data.windows(cfg.history + max(args.horizons), args.stride)
    scored = score_windows(model, data, cfg.history, args.horizons, windows, "cpu")
    report = {"checkpoint": args.checkpoint, "windows": len(windows), "horizons": analyse(scored, args.horizons)}
    Path(args.out).write_text(json.dumps(report, indent=1))
    print(json.dumps(report["horizons"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
