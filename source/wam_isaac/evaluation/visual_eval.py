"""``wam eval`` on a pixel model (``wam train-pixel``'s ``model.pt``): the same three dimensions as for state models.

1. visual fidelity: PSNR and SSIM of the frames the model predicts ``--horizons`` steps ahead (autoregressive in
   latent space from ``history`` true frames and the true actions), beside copy-last-frame
   (:func:`~.visual_fidelity.horizon_fidelity`), and ``strip.png`` (true / predicted / copy-last frames per horizon of
   the window with the most motion); and the autoencoder's share: the PSNR of the seen frame decoded from its latent,
   and the fidelity of the *true* future frames' latents decoded as predictions are (the ceiling of any latent
   dynamics with this encoder, decoder and gate);
2. physical commonsense through the state read-out: the states the model reads out of the latents it imagines, from
   the last seen state on, checked by :func:`~.physics.compare_physics` beside the true trajectories of the same
   windows; and the read-out's error per state term and horizon beside copy-last-state (how far the imagined states
   are from the truth), plus its error on the true frames (how well a frame is read at all);
3. action plausibility (joint or cascaded, with ``--task``): the model in control of the camera env, closed loop
   (:func:`~.closed_loop.run_closed_loop` with a per-env window of the last ``history`` frames).

Episodes scored: the training run's held-out envs when ``--data`` is its dataset, else every episode.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from ..cli.errors import UsageError

STRIP_NAME = "strip.png"
"""The predicted-vs-true picture ``wam eval`` writes beside the report for a pixel model."""
VIDEO_NAME = "rollout.mp4"
"""The predicted-vs-true video (true left, predicted right) of the same window as the strip."""


def check_inputs(args: argparse.Namespace, device: str):
    """The model, its config, the dataset's manifest, after the checks on the user's input (one-line errors)."""
    from ..data.errors import ManifestError
    from ..data.manifest import load_manifest
    from ..models.pixel_training import load_pixel_model
    from ..models.schema import SchemaError, WamSchema
    from .report import REPORT_NAME

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' exists and is not a directory")
    if (out / REPORT_NAME).exists() and not args.overwrite:
        raise UsageError(f"{out / REPORT_NAME} exists: pass --overwrite to replace the evaluation outputs")
    model, cfg, trained_on = load_pixel_model(args.checkpoint, device)
    if not Path(args.data).is_dir():
        raise UsageError(f"dataset directory '{args.data}' does not exist")
    try:
        manifest = load_manifest(args.data)
    except ManifestError as error:
        raise UsageError(str(error)) from None
    keys = manifest["keys"]
    if cfg.frame_key not in keys or list(keys[cfg.frame_key]["shape"]) != [cfg.model.image_size] * 2 + [3]:
        size = cfg.model.image_size
        raise UsageError(f"{args.data} has no {size}x{size}x3 frames under '{cfg.frame_key}' (the model's input)")
    if model.schema is not None:
        try:
            model.schema.check_compatible(WamSchema.from_manifest(manifest))
        except SchemaError as error:
            raise UsageError(str(error)) from None
    if args.task is not None and args.task != manifest.get("task_id"):
        raise UsageError(f"--task {args.task} but the dataset {args.data} was generated with {manifest.get('task_id')}")
    return model, cfg, trained_on, manifest


def scored_episodes(args, cfg, trained_on: str | None) -> tuple[list[int] | None, str]:
    """The held-out envs' episodes when ``--data`` is the training dataset, else None (every episode)."""
    from ..data import split_by_env

    if trained_on is None or Path(args.data).resolve() != Path(trained_on).resolve():
        return None, f"all episodes (the model was trained on {trained_on})"
    val_ids = split_by_env(args.data, cfg.val_fraction, cfg.seed)[1]
    if not val_ids:
        raise UsageError(f"the model was trained on every episode of {args.data} (val_fraction 0): none is held out")
    return val_ids, f"validation split by env (val_fraction {cfg.val_fraction}, seed {cfg.seed})"


@torch.no_grad()
def score_windows(model, data, history: int, horizons: list[int], windows, device: str, batch: int = 16):
    """Roll the model out on every window; returns the frames at the horizons, predicted and true (N, n, ...), the
    last seen frames (N, ...), the predicted frames with the change gate held open (``ungated``, a gated model),
    the true future frames' latents decoded as the predictions are (``true_latent``, N, n, C, H, W), the last seen
    frame decoded from its latent (``reconstruction``, N, C, H, W), and (with a read-out) the imagined states
    (N, 1 + F, S) from the last seen true state, the true states (N, 1 + F, S) and the read-out of the last seen
    frame (N, S)."""
    forecast, length = max(horizons), history + max(horizons)
    at = torch.tensor([h - 1 for h in horizons])
    out = {"predicted": [], "true": [], "last_seen": [], "imagined": [], "true_states": [], "read_seen": [],
           "ungated": [], "true_latent": [], "reconstruction": []}  # fmt: skip
    for first in range(0, len(windows), batch):
        chosen = windows[first : first + batch]
        frames, actions = data.batch(chosen, length, device)
        extras = data.extras(chosen, length, device)
        instruction = model.instruction_input(extras.get("instruction"))
        latents = model.encode(frames[:, :history])
        predicted, features = model.rollout(frames, actions, history, forecast, instruction, latents, True)
        out["predicted"].append(model.predict_frames(frames, predicted[:, at], history).cpu())
        if model.gate is not None:  # the same latents, the whole decoded change: what the gate does
            gate, model.gate = model.gate, None
            try:
                out["ungated"].append(model.predict_frames(frames, predicted[:, at], history).cpu())
            finally:
                model.gate = gate
        out["true"].append(frames[:, history:][:, at].cpu())
        out["true_latent"].append(model.predict_frames(frames, model.encode(frames[:, history:][:, at]), history).cpu())
        out["reconstruction"].append(model.decode(latents[:, -1:])[:, 0].cpu())
        out["last_seen"].append(frames[:, history - 1].cpu())
        if model.readout is not None:
            states = extras["states"]
            command = extras.get("instruction")
            command = None if command is None else command[:, :history]
            seen_features = model.history_features(latents, command, actions[:, :history])
            imagined = model.read_state(predicted, features)
            out["imagined"].append(torch.cat((states[:, history - 1 : history], imagined), dim=1).cpu())
            out["true_states"].append(states[:, history - 1 :].cpu())
            out["read_seen"].append(model.read_state(latents[:, -1], seen_features[:, -1]).cpu())
    return {name: torch.cat(values) if values else None for name, values in out.items()}


@torch.no_grad()
def rollout_video(model, data, window: tuple[int, int], history: int, forecast: int, path, device: str) -> None:
    """``path``: the true frames after the ``history`` seen ones (left) beside the model's autoregressive predictions
    from them (right), ``forecast`` frames of one window at the control rate (25 fps)."""
    from .video import write_side_by_side

    frames, actions = data.batch([window], history + forecast, device)
    instruction = model.instruction_input(data.extras([window], history + forecast, device).get("instruction"))
    predicted = model.predict_frames(frames, model.rollout(frames, actions, history, forecast, instruction), history)
    as_uint8 = (predicted[0].movedim(-3, -1) * 255).round().to(torch.uint8).cpu().numpy()
    write_side_by_side(frames[0, history:].cpu().numpy(), as_uint8, path, fps=25)


def background_leak(scored: dict, horizons: list[int], threshold: float = 4.0 / 255.0) -> dict:
    """Mean ``|predicted - last seen|`` [/255] over the pixels the true frame left unchanged (every channel within
    ``threshold`` of the last seen frame), per horizon, with the gate and held open."""
    from ..models.pixel_world_model import to_float_frames

    last = to_float_frames(scored["last_seen"])[:, None]
    true = to_float_frames(scored["true"])
    static = ((true - last).abs().amax(dim=-3, keepdim=True) <= threshold).expand_as(true)
    figures = {}
    for name in ("predicted", "ungated"):
        leak = (scored[name] - last).abs() * 255
        figures[name] = [float(leak[:, i][static[:, i]].mean()) for i in range(len(horizons))]
    return {"gated": figures["predicted"], "gate_open": figures["ungated"], "horizons": horizons}


def autoencoder_figures(scored: dict, horizons: list[int], columns: list[int]) -> dict:
    """The autoencoder's share of the error: ``reconstruction_psnr`` [dB], the mean PSNR of the last seen frames
    decoded from their latents, and ``true_latent``, PSNR [dB] and SSIM per horizon of the true future frames'
    latents decoded as predictions are (last seen frame plus the gated decoded change): what perfect latent dynamics
    would score with this encoder, decoder and gate."""
    from .visual_fidelity import horizon_fidelity, psnr

    ceiling = horizon_fidelity(scored["true_latent"], scored["true"], scored["last_seen"], columns)
    return {
        "reconstruction_psnr": float(psnr(scored["reconstruction"], scored["last_seen"]).mean()),
        "true_latent": {
            str(h): {"psnr": ceiling[str(c)]["psnr"], "ssim": ceiling[str(c)]["ssim"]}
            for h, c in zip(horizons, columns, strict=True)
        },
    }


def readout_errors(scored: dict, schema, horizons: list[int]) -> dict:
    """Per state term [its units]: mean Euclidean error of the imagined states and of copy-last-state at each
    horizon, and of the read-out of the last seen (true) frame."""
    imagined, true = scored["imagined"], scored["true_states"]
    figures = {"horizons": horizons, "model": {}, "copy_last": {}, "seen_frame": {}}
    for term in schema.state_slices():
        part = slice(term.start, term.stop)

        def error(a, b, part=part):
            return float(torch.linalg.norm(a[..., part] - b[..., part], dim=-1).mean())

        figures["model"][term.name] = [error(imagined[:, h], true[:, h]) for h in horizons]
        figures["copy_last"][term.name] = [error(true[:, 0], true[:, h]) for h in horizons]
        figures["seen_frame"][term.name] = error(scored["read_seen"], true[:, 0])
    return figures


def evaluate_pixel(args: argparse.Namespace, overrides: list[str], device: str) -> int:
    """``wam eval`` of a pixel checkpoint: score, write ``eval.json`` and ``strip.png``, print the summary."""
    from ..models.pixel_training import load_frame_episodes
    from .closed_loop import not_applicable
    from .physics import compare_physics
    from .report import REPORT_NAME, summary_table, write_report
    from .spec import physics_spec_for
    from .visual_fidelity import horizon_fidelity, psnr
    from .visual_strip import frame_strip, save_strip

    model, cfg, trained_on, manifest = check_inputs(args, device)
    if args.task is not None:
        from ..cli.common import check_task

        check_task(args.task)
    horizons = sorted(set(args.horizons))
    episode_ids, chosen = scored_episodes(args, cfg, trained_on)
    if episode_ids is None:
        from ..data.manifest import load_manifest
        from ..data.reader import episode_table

        episode_ids = sorted(episode_table(load_manifest(args.data)))
    data = load_frame_episodes(args.data, episode_ids, cfg.frame_key, model.schema)
    length = cfg.history + max(horizons)
    windows = data.windows(length, args.stride)
    if not windows:
        raise UsageError(f"no scored episode has {length} steps (history {cfg.history} + horizon {max(horizons)})")
    if len(windows) > args.max_windows:
        windows = [windows[i] for i in torch.linspace(0, len(windows) - 1, args.max_windows).round().long().tolist()]
    scored = score_windows(model, data, cfg.history, horizons, windows, device)
    columns = list(range(1, len(horizons) + 1))
    by_column = horizon_fidelity(scored["predicted"], scored["true"], scored["last_seen"], columns)
    visual = {
        "windows": len(windows),
        "episodes": len({e for e, _ in windows}),
        "horizons": {str(h): by_column[str(c)] for h, c in zip(horizons, columns, strict=True)},
    }
    if scored["ungated"] is not None:
        ungated = horizon_fidelity(scored["ungated"], scored["true"], scored["last_seen"], columns)
        visual["gate_open"] = {
            str(h): {"psnr": ungated[str(c)]["psnr"], "ssim": ungated[str(c)]["ssim"]}
            for h, c in zip(horizons, columns, strict=True)
        }
        visual["background_leak"] = background_leak(scored, horizons)
    visual["autoencoder"] = autoencoder_figures(scored, horizons, columns)
    task = manifest.get("task_id", "")
    if model.readout is None:
        physics = {"applicable": False, "reason": "the model has no state read-out (no world_model states)"}
        readout = None
    else:
        spec, why_not = physics_spec_for(task)
        physics = compare_physics(scored["imagined"], scored["true_states"], model.schema, spec, why_not)
        readout = readout_errors(scored, model.schema, horizons)
    if args.task is None:
        loop = not_applicable("no --task given")
    elif not model.acts:
        loop = not_applicable("a pixel world model has no action head (train with --model joint or cascaded)")
    else:
        loop = pixel_closed_loop(args, overrides, device, model, cfg)
    report = {
        "checkpoint": str(args.checkpoint),
        "dataset": str(args.data),
        "task": task,
        "model_kind": f"pixel_{cfg.wam.kind}",
        "history": cfg.history,
        "device": device,
        "episodes_scored": chosen,
        "visual_fidelity": visual,
        "state_readout": readout,
        "physics": physics,
        "closed_loop": loop,
    }
    out = Path(args.out)
    write_report(out, report)
    worst = int(psnr(scored["last_seen"], scored["true"][:, -1]).argmin())
    strip = frame_strip(scored["true"][worst], scored["predicted"][worst], scored["last_seen"][worst], columns)
    save_strip(out / STRIP_NAME, strip)
    rollout_video(model, data, windows[worst], cfg.history, max(horizons), out / VIDEO_NAME, device)
    print(f"[wam] eval of {args.checkpoint} (pixel {cfg.wam.kind}) on {args.data}, {chosen}")
    print(summary_table(report))
    ceiling = visual["autoencoder"]["true_latent"]
    print(
        f"[wam] autoencoder: seen frame decoded at {visual['autoencoder']['reconstruction_psnr']:.2f} dB; true "
        "future latents decoded (the dynamics' ceiling): PSNR "
        + " / ".join(f"{ceiling[str(h)]['psnr']:.2f}" for h in horizons)
        + " dB"
    )
    print(f"[wam] wrote {out / REPORT_NAME}, {STRIP_NAME} and {VIDEO_NAME}")
    return 0


class FrameWindows:
    """An env whose ``reset`` and ``step`` also keep every env's last ``history`` camera frames (``frames``,
    uint8 (N, H, h, w, C)); a new episode's window is filled with copies of its first frame (as
    :class:`~.closed_loop.HistoryWindow` does with states). Everything else is the env's."""

    def __init__(self, env, history: int, group: str = "camera") -> None:
        self.env, self.history, self.group = env, history, group
        self.frames: torch.Tensor | None = None

    def __getattr__(self, name: str):
        return getattr(self.env, name)

    def reset(self, *args, **kwargs):
        obs, info = self.env.reset(*args, **kwargs)
        frame = obs[self.group]
        self.frames = frame[:, None].expand(-1, self.history, *frame.shape[1:]).clone()
        return obs, info

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        frame = obs[self.group]
        self.frames = torch.cat((self.frames[:, 1:], frame[:, None]), dim=1)
        done = terminated | truncated
        if done.any():
            self.frames[done] = frame[done, None].expand(-1, self.history, *frame.shape[1:])
        return obs, rewards, terminated, truncated, info


class FramePolicy:
    """``act(states, instruction, prev_actions)`` of :func:`~.closed_loop.run_closed_loop` for a pixel WAM: it reads
    the frames of a :class:`FrameWindows` env (not the states), the instruction and the previous actions."""

    def __init__(self, model, env: FrameWindows) -> None:
        self.model, self.env = model, env

    def act(self, states, instruction, prev_actions) -> torch.Tensor:
        command = instruction if self.model.instruction_dim else None
        return self.model.act(self.env.frames, command, prev_actions)


def pixel_closed_loop(args, overrides: list[str], device: str, model, cfg) -> dict:
    """Build the camera task's env (kit-less Newton on the CPU) and run the pixel WAM closed loop."""
    import gymnasium as gym

    from ..cli.common import simulation, task_env_cfg
    from .closed_loop import run_closed_loop

    env_cfg, _ = task_env_cfg(args.task, overrides, device)
    env_cfg.scene.num_envs = args.num_envs
    env_cfg.seed = args.seed
    if model.schema is None:
        return {"applicable": False, "reason": "the model was trained without world_model states (no schema)"}
    if not hasattr(env_cfg.observations, cfg.frame_key.split("/", 1)[-1]):
        return {"applicable": False, "reason": f"task {args.task} has no '{cfg.frame_key}' observation group"}
    with simulation(env_cfg, device):
        env = FrameWindows(gym.make(args.task, cfg=env_cfg).unwrapped, cfg.history, cfg.frame_key.split("/", 1)[-1])
        try:
            stats = run_closed_loop(
                env, FramePolicy(model, env), model.schema, cfg.history, args.episodes, seed=args.seed
            )
        finally:
            env.close()
    return {**stats.to_dict(args.episodes), "num_envs": args.num_envs}
