"""Train a pixel world model or WAM (:class:`~wam_isaac.models.pixel_wam.PixelWAM`) on a dataset's camera frames and
score its predicted frames per horizon (PSNR, SSIM) beside the copy-last-frame baseline, on episodes of held-out envs.

The frames (``obs/camera`` by default, uint8) and actions of the chosen episodes (and, when the dataset has them, the
``world_model`` states, instructions, rewards and termination flags the heads train on) are read once with
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

from .pixel_wam import PixelWAM, PixelWamCfg
from .pixel_world_model import PixelWorldModel, PixelWorldModelCfg, to_float_frames
from .schema import REWARD_KEY, TERMINATION_KEY, WamSchema

CHECKPOINT_FORMAT = "wam_isaac.pixel/1"
"""``format`` of a pixel model's ``model.pt`` (how ``wam eval`` tells it from a state model's checkpoint)."""


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
    pretrain_updates: int = 0
    """Reconstruction-only Adam updates of the encoder and decoder before the full training, each on ``batch *
    (history + forecast)`` random training frames (as many as one full update reads); 0: none. Why: the predicted
    frame is the last seen one plus a decoded change, so it can be no better than the decoder renders the arm and
    the cube; trained jointly for a few hundred updates the decoder rendered them so poorly that even the encoded
    *true* future frame, decoded, beat copy-last-frame by a fraction of a dB."""
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
    wam: PixelWamCfg = field(default_factory=PixelWamCfg)
    """The model's kind (world, joint, cascaded), the read-out, the head losses' weights."""


@dataclass
class FrameEpisodes:
    """Frames and actions of some episodes, on the host."""

    frames: list[torch.Tensor]
    """Per episode, uint8 (T, H, W, C)."""
    actions: list[torch.Tensor]
    """Per episode, float32 (T, A)."""
    states: list[torch.Tensor] | None = None
    """Per episode, the flat ``world_model`` state (T, S) in the schema's order, or None."""
    instruction: list[torch.Tensor] | None = None
    """Per episode, the flat instruction (T, I), or None."""
    rewards: list[torch.Tensor] | None = None
    """Per episode, float32 (T,), or None."""
    terminated: list[bool] | None = None
    """Per episode, whether it ended by termination (its last row's ``labels/flags/terminated``), or None."""

    def rows(self, name: str) -> torch.Tensor | None:
        """Every row of the named per-step field across episodes, concatenated, or None if not loaded."""
        values = getattr(self, name)
        return None if values is None else torch.cat(values)

    def extras(self, windows: Sequence[tuple[int, int]], length: int, device: str) -> dict[str, torch.Tensor]:
        """``states``, ``instruction``, ``rewards`` of the windows (B, length, ·) and ``terminal`` (B,) (the window
        ends on the last row of an episode that terminated), for what was loaded."""
        out = {}
        for name in ("states", "instruction", "rewards"):
            values = getattr(self, name)
            if values is not None:
                out[name] = torch.stack([values[e][s : s + length] for e, s in windows]).to(device)
        if self.terminated is not None:
            ends = [self.terminated[e] and s + length == len(self.frames[e]) for e, s in windows]
            out["terminal"] = torch.tensor(ends, dtype=torch.bool, device=device)
        return out

    def windows(self, length: int, stride: int) -> list[tuple[int, int]]:
        """``(episode, start)`` of every window of ``length`` steps starting at a multiple of ``stride``."""
        return [(e, s) for e, f in enumerate(self.frames) for s in range(0, len(f) - length + 1, stride)]

    def batch(self, windows: Sequence[tuple[int, int]], length: int, device: str):
        """Frames (B, length, H, W, C) uint8 and actions (B, length, A) of the windows, on ``device``."""
        frames = torch.stack([self.frames[e][s : s + length] for e, s in windows]).to(device)
        actions = torch.stack([self.actions[e][s : s + length] for e, s in windows]).to(device)
        return frames, actions


def load_frame_episodes(
    dataset_dir: str | Path, episode_ids: Sequence[int], frame_key: str, schema: WamSchema | None = None
) -> FrameEpisodes:
    """The frames and actions of ``episode_ids``; with ``schema`` also their states, instructions, rewards and
    termination (those the dataset has)."""
    from ..data import DatasetReader

    def flat(reader, episode_id: int, keys) -> torch.Tensor:
        parts = [reader.rows(episode_id, key).reshape(reader.rows(episode_id, key).shape[0], -1) for key in keys]
        return torch.from_numpy(np.concatenate(parts, axis=1).astype(np.float32))

    data = FrameEpisodes([], [])
    with DatasetReader(dataset_dir) as reader:
        keys = reader.manifest["keys"]
        if frame_key not in keys:
            raise ValueError(f"{dataset_dir} has no {frame_key!r} frames (keys: {', '.join(reader.keys)})")
        if schema is not None:
            data.states = [] if schema.state_keys else None
            data.instruction = [] if schema.instruction_keys else None
            data.rewards = [] if REWARD_KEY in keys else None
            data.terminated = [] if TERMINATION_KEY in keys else None
        for episode_id in episode_ids:
            data.frames.append(torch.from_numpy(np.ascontiguousarray(reader.rows(episode_id, frame_key))))
            data.actions.append(torch.from_numpy(reader.rows(episode_id, "actions").astype(np.float32)))
            if data.states is not None:
                data.states.append(flat(reader, episode_id, schema.state_keys))
            if data.instruction is not None:
                data.instruction.append(flat(reader, episode_id, schema.instruction_keys))
            if data.rewards is not None:
                data.rewards.append(torch.from_numpy(reader.rows(episode_id, REWARD_KEY).astype(np.float32)))
            if data.terminated is not None:
                data.terminated.append(bool(reader.rows(episode_id, TERMINATION_KEY)[-1]))
    return data


def dataset_schema(dataset_dir: str | Path) -> WamSchema | None:
    """The dataset's state / instruction layout, or None if it has no ``world_model`` states."""
    from ..data import load_manifest
    from .schema import SchemaError

    try:
        return WamSchema.from_manifest(load_manifest(dataset_dir))
    except SchemaError:
        return None


def build_pixel_model(cfg: PixelTrainCfg, action_dim: int, schema: WamSchema | None) -> PixelWAM:
    """The model ``cfg`` describes, for a dataset of that action size and schema.

    Raises:
        ValueError: a joint or cascaded WAM on a dataset without what its heads train on.
    """
    if cfg.wam.kind == "joint" and schema is None:
        raise ValueError("a joint pixel WAM trains its value head on rewards: the dataset has no world_model states")
    return PixelWAM(cfg.model, cfg.wam, action_dim, schema)


def train_pixel_world_model(dataset_dir: str | Path, cfg: PixelTrainCfg, device: str = "cpu", log=print):
    """Train on the training envs' episodes; returns ``(model, stats)`` with the losses and the training
    throughput [frames/s] (frames of the windows, each encoded and decoded once and predicted at most once)."""
    from ..data import split_by_env

    train_ids, val_ids = split_by_env(dataset_dir, cfg.val_fraction, cfg.seed)
    schema = dataset_schema(dataset_dir)
    data = load_frame_episodes(dataset_dir, train_ids, cfg.frame_key, schema)
    if cfg.wam.kind == "joint" and (data.rewards is None or data.terminated is None):
        raise ValueError(f"a joint pixel WAM needs '{REWARD_KEY}' and '{TERMINATION_KEY}' in {dataset_dir}")
    length = cfg.history + cfg.forecast
    windows = data.windows(length, 1)
    if not windows:
        raise ValueError(f"no training episode has {length} steps (history {cfg.history} + forecast {cfg.forecast})")
    torch.manual_seed(cfg.seed)
    generator = np.random.default_rng(cfg.seed)
    model = build_pixel_model(cfg, data.actions[0].shape[1], schema)
    model.fit_normalizers(data.rows("states"), data.rows("instruction"), data.rows("actions"), data.rows("rewards"))
    model.to(device)
    pretrained = pretrain_autoencoder(model, torch.cat(data.frames), cfg, device, generator, log)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    start, losses = time.perf_counter(), {}
    for update in range(cfg.updates):
        chosen = [windows[i] for i in generator.integers(0, len(windows), cfg.batch)]
        frames, actions = data.batch(chosen, length, device)
        batch = {"frames": frames, "actions": actions, **data.extras(chosen, length, device)}
        losses = model.wam_loss(batch, cfg.history, cfg.ssim_weight)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        if update % 50 == 0 or update == cfg.updates - 1:
            log(f"[pixel] update {update}: " + ", ".join(f"{k} {v.item():.5f}" for k, v in losses.items()))
    seconds = time.perf_counter() - start
    stats = {
        "model_kind": cfg.wam.kind,
        "readout": model.readout is not None,
        "train_episodes": len(train_ids),
        "val_episodes": len(val_ids),
        "train_windows": len(windows),
        "final_losses": {k: v.item() for k, v in losses.items()},
        "frames_per_s": cfg.updates * cfg.batch * length / seconds,
        "seconds": seconds,
        **pretrained,
    }
    return model, stats


def pretrain_autoencoder(model: PixelWorldModel, frames: torch.Tensor, cfg: PixelTrainCfg, device: str,
                         generator: np.random.Generator, log=print) -> dict:  # fmt: skip
    """``cfg.pretrain_updates`` Adam updates of the encoder and decoder alone on the squared reconstruction error of
    random frames of ``frames`` (N, H, W, C) uint8 (the rest of the model is untouched); returns the last
    reconstruction loss [mean squared error, 0-1 units] and the seconds spent (nothing without pretraining)."""
    if cfg.pretrain_updates <= 0:
        return {}
    parameters = [*model.encoder.parameters(), *model.decoder.parameters()]
    optimizer = torch.optim.Adam(parameters, lr=cfg.lr)
    count, start = cfg.batch * (cfg.history + cfg.forecast), time.perf_counter()
    loss = torch.zeros(())
    for update in range(cfg.pretrain_updates):
        chosen = torch.from_numpy(generator.integers(0, len(frames), count))
        target = to_float_frames(frames[chosen].to(device))
        loss = torch.nn.functional.mse_loss(model.decoder(model.encoder(target)), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if update % 250 == 0 or update == cfg.pretrain_updates - 1:
            log(f"[pixel] pretrain update {update}: reconstruction {loss.item():.5f}")
    return {"pretrain_reconstruction": loss.item(), "pretrain_seconds": time.perf_counter() - start}


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
    schema = getattr(model, "schema", None)
    data = load_frame_episodes(dataset_dir, val_ids, cfg.frame_key, schema if model.instruction_dim else None)
    forecast = max(cfg.horizons)
    length = cfg.history + forecast
    windows = data.windows(length, cfg.eval_stride)
    if not windows:
        raise ValueError(f"no validation episode has {length} steps (history {cfg.history} + horizon {forecast})")
    model.eval()
    predicted, true, last_seen = [], [], []
    for first in range(0, len(windows), 32):
        frames, actions = data.batch(windows[first : first + 32], length, device)
        instruction = None
        if model.instruction_dim:
            chosen = windows[first : first + 32]
            instruction = model.instruction_input(data.extras(chosen, length, device)["instruction"])
        latents = model.rollout(frames, actions, cfg.history, forecast, instruction)
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
    """``model.pt`` (state dict, config, schema) and ``eval.json`` in ``out_dir``; returns the JSON's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    schema = getattr(model, "schema", None)
    torch.save({"format": CHECKPOINT_FORMAT, "model": model.state_dict(), "cfg": asdict(cfg),
                "action_dim": model.action_dim, "schema": None if schema is None else schema.to_dict(),
                "data": str(Path(report["dataset"]).resolve()) if "dataset" in report else None},
               out / "model.pt")  # fmt: skip
    path = out / "eval.json"
    path.write_text(json.dumps(report, indent=2))
    return path


def is_pixel_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a pixel model's ``model.pt`` (False for anything else, including unreadable files)."""
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception:  # noqa: BLE001 (not ours to diagnose: the state path reports it)
        return False
    return isinstance(payload, dict) and payload.get("format") == CHECKPOINT_FORMAT


def load_pixel_model(path: str | Path, device: str = "cpu") -> tuple[PixelWAM, PixelTrainCfg, str | None]:
    """The model, training config and training dataset (its path when trained) of a pixel ``model.pt``."""
    from .config import TrunkCfg

    payload = torch.load(path, map_location="cpu", weights_only=False)
    saved = dict(payload["cfg"])
    sizes = dict(saved.pop("model"))
    sizes["channels"], sizes["trunk"] = tuple(sizes["channels"]), TrunkCfg(**sizes["trunk"])
    saved["horizons"] = tuple(saved["horizons"])
    wam = PixelWamCfg(**saved.pop("wam"))
    cfg = PixelTrainCfg(**saved, model=PixelWorldModelCfg(**sizes), wam=wam)
    schema = None if payload["schema"] is None else WamSchema.from_dict(payload["schema"])
    model = PixelWAM(cfg.model, cfg.wam, payload["action_dim"], schema)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), cfg, payload.get("data")
