"""Train a :class:`~wam_isaac.models.pixel_world_model.PixelWorldModel` on a dataset's camera frames and score its
predicted frames per horizon (PSNR, SSIM) beside the copy-last-frame baseline, on episodes of held-out envs.

The frames (``obs/camera`` by default, uint8) and actions of the chosen episodes are read once with
:class:`~wam_isaac.data.DatasetReader` and kept in memory (64x64 RGB: 12 kB a frame, 5k frames 60 MB); windows of
``history + forecast`` consecutive steps of one episode are drawn at random for each update. Training rolls out
``forecast`` steps autoregressively in latent space (:meth:`PixelWorldModel.loss`); evaluation conditions on
``history`` frames and rolls out to the longest horizon, on every window of the validation episodes that fits (one
per ``eval_stride`` steps).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from .pixel_world_model import PixelWorldModel, PixelWorldModelCfg


@dataclass
class PixelTrainCfg:
    """How the pixel world model is trained and evaluated."""

    frame_key: str = "obs/camera"
    """The dataset key holding the frames, uint8 (H, W, C)."""
    history: int = 4
    """Frames the model conditions on [steps]."""
    forecast: int = 8
    """Steps rolled out autoregressively in each training window."""
    batch: int = 16
    """Windows per update."""
    updates: int = 500
    """Adam updates."""
    lr: float = 1e-3
    """Adam learning rate."""
    ssim_weight: float = 0.0
    """Weight of ``1 - SSIM`` of the predicted frames in the loss (:meth:`PixelWorldModel.loss`); 0: MSE only."""
    val_fraction: float = 0.2
    """Fraction of the episodes (whole envs: :func:`~wam_isaac.data.split_by_env`) held out for evaluation."""
    horizons: tuple[int, ...] = (1, 8, 32)
    """Steps ahead at which the predicted frames are scored."""
    eval_stride: int = 8
    """Start of one evaluation window every this many steps of a validation episode."""
    seed: int = 0
    """Seed of the split, the initialization and the window draws."""
    model: PixelWorldModelCfg = field(default_factory=PixelWorldModelCfg)
    """The model's sizes (``image_size`` must be the frames')."""


@dataclass
class FrameEpisodes:
    """Frames and actions of some episodes, on the host."""

    frames: list[torch.Tensor]
    """Per episode, uint8 (T, H, W, C)."""
    actions: list[torch.Tensor]
    """Per episode, float32 (T, A)."""

    def windows(self, length: int, stride: int) -> list[tuple[int, int]]:
        """``(episode, start)`` of every window of ``length`` steps starting at a multiple of ``stride``."""
        return [(e, s) for e, f in enumerate(self.frames) for s in range(0, len(f) - length + 1, stride)]

    def batch(self, windows: Sequence[tuple[int, int]], length: int, device: str):
        """Frames (B, length, H, W, C) uint8 and actions (B, length, A) of the windows, on ``device``."""
        frames = torch.stack([self.frames[e][s : s + length] for e, s in windows]).to(device)
        actions = torch.stack([self.actions[e][s : s + length] for e, s in windows]).to(device)
        return frames, actions


def load_frame_episodes(dataset_dir: str | Path, episode_ids: Sequence[int], frame_key: str) -> FrameEpisodes:
    """The frames and actions of ``episode_ids``."""
    from ..data import DatasetReader

    frames, actions = [], []
    with DatasetReader(dataset_dir) as reader:
        if frame_key not in reader.manifest["keys"]:
            raise ValueError(f"{dataset_dir} has no {frame_key!r} frames (keys: {', '.join(reader.keys)})")
        for episode_id in episode_ids:
            frames.append(torch.from_numpy(np.ascontiguousarray(reader.rows(episode_id, frame_key))))
            actions.append(torch.from_numpy(reader.rows(episode_id, "actions").astype(np.float32)))
    return FrameEpisodes(frames, actions)


def train_pixel_world_model(dataset_dir: str | Path, cfg: PixelTrainCfg, device: str = "cpu", log=print):
    """Train on the training envs' episodes; returns ``(model, stats)`` with the losses and the training
    throughput [frames/s] (frames of the windows, each encoded and decoded once and predicted at most once)."""
    from ..data import split_by_env

    train_ids, val_ids = split_by_env(dataset_dir, cfg.val_fraction, cfg.seed)
    data = load_frame_episodes(dataset_dir, train_ids, cfg.frame_key)
    length = cfg.history + cfg.forecast
    windows = data.windows(length, 1)
    if not windows:
        raise ValueError(f"no training episode has {length} steps (history {cfg.history} + forecast {cfg.forecast})")
    torch.manual_seed(cfg.seed)
    generator = np.random.default_rng(cfg.seed)
    model = PixelWorldModel(cfg.model, action_dim=data.actions[0].shape[1]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, losses = time.perf_counter(), {}
    for update in range(cfg.updates):
        chosen = [windows[i] for i in generator.integers(0, len(windows), cfg.batch)]
        frames, actions = data.batch(chosen, length, device)
        losses = model.loss(frames, actions, cfg.history, cfg.ssim_weight)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        if update % 50 == 0 or update == cfg.updates - 1:
            log(f"[pixel] update {update}: " + ", ".join(f"{k} {v.item():.5f}" for k, v in losses.items()))
    seconds = time.perf_counter() - start
    stats = {
        "train_episodes": len(train_ids),
        "val_episodes": len(val_ids),
        "train_windows": len(windows),
        "final_losses": {k: v.item() for k, v in losses.items()},
        "frames_per_s": cfg.updates * cfg.batch * length / seconds,
        "seconds": seconds,
    }
    return model, stats


@torch.no_grad()
def evaluate_pixel_world_model(
    model: PixelWorldModel, dataset_dir: str | Path, cfg: PixelTrainCfg, device="cpu", strip_path=None
):
    """PSNR and SSIM at ``cfg.horizons`` of the model and of copy-last on the validation envs' episodes
    (:func:`~wam_isaac.evaluation.visual_fidelity.horizon_fidelity`), plus the number of windows scored. With
    ``strip_path``, also a PNG of the window where copy-last is worst at the longest horizon (the most motion):
    true, predicted and copy-last frames at each horizon (:mod:`~wam_isaac.evaluation.visual_strip`)."""
    from ..data import split_by_env
    from ..evaluation.visual_fidelity import horizon_fidelity

    _, val_ids = split_by_env(dataset_dir, cfg.val_fraction, cfg.seed)
    data = load_frame_episodes(dataset_dir, val_ids, cfg.frame_key)
    forecast = max(cfg.horizons)
    length = cfg.history + forecast
    windows = data.windows(length, cfg.eval_stride)
    if not windows:
        raise ValueError(f"no validation episode has {length} steps (history {cfg.history} + horizon {forecast})")
    model.eval()
    predicted, true, last_seen = [], [], []
    for first in range(0, len(windows), 32):
        frames, actions = data.batch(windows[first : first + 32], length, device)
        latents = model.rollout(frames, actions, cfg.history, forecast)
        predicted.append(model.predict_frames(frames, latents, cfg.history).cpu())
        true.append(frames[:, cfg.history :].cpu())
        last_seen.append(frames[:, cfg.history - 1].cpu())
    predicted, true, last_seen = torch.cat(predicted), torch.cat(true), torch.cat(last_seen)
    figures = horizon_fidelity(predicted, true, last_seen, cfg.horizons)
    if strip_path is not None:
        from ..evaluation.visual_fidelity import psnr
        from ..evaluation.visual_strip import frame_strip, save_strip

        worst = int(psnr(last_seen, true[:, forecast - 1]).argmin())
        save_strip(strip_path, frame_strip(true[worst], predicted[worst], last_seen[worst], cfg.horizons))
    return {"windows": len(windows), "horizons": figures}


def save(out_dir: str | Path, model: PixelWorldModel, cfg: PixelTrainCfg, report: dict) -> Path:
    """``model.pt`` (state dict and config) and ``eval.json`` in ``out_dir``; returns the JSON's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.state_dict(), "cfg": asdict(cfg), "action_dim": model.action_dim}, out / "model.pt")
    path = out / "eval.json"
    path.write_text(json.dumps(report, indent=2))
    return path
