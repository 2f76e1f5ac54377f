"""``wam play``: run a trained policy in its task for ``--episodes`` episodes with its mean action, print the success
rate and the mean return, and write them (with every episode's success, return and length) to a JSON file.

Takes an rsl-rl run's checkpoint (``logs/rsl_rl/<experiment>/<run>/model_<i>.pt`` of ``wam train`` or
``isaaclab train``, any algorithm: the policy is rebuilt from the run's own ``params/agent.yaml`` and agent entry
point, so a joint-WAM PPO run loads as one) or a ``wam train-model`` joint / cascaded WAM checkpoint (its action head
acts on a sliding window of the ``world_model`` and ``instruction`` groups, as ``wam eval`` runs it). Each env
contributes at most its first ``ceil(episodes / num_envs)`` episodes (short episodes are not over-counted).

The report goes to ``--out``/play.json, or beside the checkpoint as ``<checkpoint stem>.play.json``. Hydra overrides
``env.<field>=...`` after the flags edit the env (e.g. ``env.episode_length_s=2``). ``--video`` records env 0's
camera for the first ``--video_length`` steps to an MP4 beside the report (``play.mp4`` / ``<checkpoint
stem>.play.mp4``), as Isaac Lab's ``--video`` records its viewport: a camera task's camera group, else a viewer camera
added to the scene (``--video_resolution`` px square, the task's viewpoint of
:data:`wam_isaac.envs.viewer_camera.VIEWPOINTS`; no observation group reads it, so the policy sees what it was
trained on; it renders every env on the recorded steps only: keep ``--num_envs`` small).
"""

from __future__ import annotations

import argparse
import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .common import check_task, positive_int, resolve_device, simulation, split_overrides, task_env_cfg
from .errors import UsageError

REPORT_NAME = "play.json"
"""Name of the report under ``--out``."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "play",
        help="run a trained policy for M episodes: success rate and return",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", required=True, help="task id, e.g. WAM-Push-Cube (the checkpoint's task)")
    parser.add_argument("--checkpoint", required=True, help="rsl-rl model_<i>.pt, or a wam train-model checkpoint")
    parser.add_argument("--episodes", type=positive_int, default=256, help="episodes to score")
    parser.add_argument("--num_envs", type=positive_int, default=64, help="parallel environments")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the environment")
    parser.add_argument("--out", default=None, help=f"directory of {REPORT_NAME} (default: beside the checkpoint)")
    parser.add_argument("--video", action="store_true", help="record env 0's camera to an MP4 beside the report")
    parser.add_argument("--video_length", type=positive_int, default=200, help="steps recorded with --video")
    parser.add_argument(
        "--video_resolution",
        type=positive_int,
        default=256,
        help="side [px] of the viewer camera added for --video on a task without a camera group",
    )
    parser.set_defaults(run=run)


@dataclass
class LoadedCheckpoint:
    """What ``--checkpoint`` holds, read and checked before any simulator starts."""

    kind: str
    """``rsl_rl`` or ``wam``."""
    description: str
    """One phrase for the report, e.g. ``rsl-rl PPO, iteration 99`` or ``wam train-model joint``."""
    run: object = None
    """The rsl-rl run (:class:`wam_isaac.export.RunInfo`)."""
    model: object = None
    """The WAM (eval mode)."""
    history: int = 0
    """The WAM's history length H [steps]."""


def load_checkpoint(path: str, task: str, device: str) -> LoadedCheckpoint:
    """Identify and load ``path`` for ``task``.

    Raises:
        UsageError: missing file, not a checkpoint, a world model without an action head, another task's checkpoint.
    """
    import torch

    from ..training.checkpoint import FORMAT

    file = Path(path)
    if not file.is_file():
        raise UsageError(
            f"checkpoint '{file}' does not exist; expected an rsl-rl model_<i>.pt or a wam train-model .pt"
        )
    expected = "expected an rsl-rl run's model_<i>.pt or a wam train-model checkpoint"
    if not zipfile.is_zipfile(file):
        raise UsageError(f"'{file}' is not a torch checkpoint; {expected}")
    try:
        payload = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises many types for archives it refuses or cannot read
        raise UsageError(f"'{file}' is not a readable torch checkpoint ({type(error).__name__}); {expected}") from None
    if isinstance(payload, dict) and payload.get("format") == FORMAT:
        return load_wam(file, task, device)
    if isinstance(payload, dict) and "actor_state_dict" in payload:
        return load_rsl_rl(file, task)
    keys = sorted(payload)[:6] if isinstance(payload, dict) else type(payload).__name__
    raise UsageError(f"'{file}' holds no policy (found {keys}); {expected}")


def load_rsl_rl(file: Path, task: str) -> LoadedCheckpoint:
    """An rsl-rl checkpoint in its run directory, trained on ``task``."""
    from ..export import ExportError, read_run

    try:
        run = read_run(file)
    except ExportError as error:
        raise UsageError(str(error)) from None
    if run.task != task:
        raise UsageError(f"checkpoint '{file}' was trained on {run.task}, not on --task {task}")
    check_task(task, run.agent_entry_point)
    algorithm = (run.agent_yaml.get("algorithm") or {}).get("class_name", "PPO")
    iteration = "" if run.iteration is None else f", iteration {run.iteration}"
    return LoadedCheckpoint("rsl_rl", f"rsl-rl {algorithm.rsplit(':', 1)[-1]}{iteration}", run=run)


def load_wam(file: Path, task: str, device: str) -> LoadedCheckpoint:
    """A ``wam train-model`` checkpoint with an action head, of ``task`` when its dataset says so."""
    from ..data.errors import ManifestError
    from ..data.manifest import load_manifest
    from ..training.checkpoint import CheckpointError
    from ..training.checkpoint import load_checkpoint as load_wam_checkpoint
    from ..training.run import config_from_dict, load_model

    try:
        cfg = config_from_dict(load_wam_checkpoint(file)["config"])
        if not cfg.model.has_policy:
            raise UsageError(
                f"'{file}' is a '{cfg.model.kind}' world model: it has no action head; play takes joint or cascaded "
                "WAMs"
            )
        model, cfg, _ = load_model(file, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    try:
        dataset_task = load_manifest(cfg.data).get("task_id")
    except (ManifestError, OSError):
        dataset_task = None  # the dataset moved: the observation schema is still checked against the env
    if dataset_task is not None and dataset_task != task:
        raise UsageError(f"checkpoint '{file}' was trained on {dataset_task} data, not on --task {task}")
    return LoadedCheckpoint("wam", f"wam train-model {cfg.model.kind}", model=model, history=cfg.train.history)


def report_path(args: argparse.Namespace) -> Path:
    """Where the report goes: ``--out``/play.json, else beside the checkpoint."""
    if args.out is not None:
        out = Path(args.out)
        if out.exists() and not out.is_dir():
            raise UsageError(f"--out '{out}' exists and is not a directory")
        return out / REPORT_NAME
    checkpoint = Path(args.checkpoint)
    return checkpoint.with_name(f"{checkpoint.stem}.play.json")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = split_overrides(extra)
    if any(not token.lstrip("+~").startswith(("env.", "presets", "physics")) for token in overrides):
        raise UsageError(f"override '{overrides[0]}': wam play takes env.<field>=... overrides only")
    check_task(args.task)
    device = resolve_device(args.device)
    loaded = load_checkpoint(args.checkpoint, args.task, device)
    path = report_path(args)
    stats = play(args, overrides, device, loaded, video=path.with_suffix(".mp4") if args.video else None)
    report = {
        "task": args.task,
        "checkpoint": str(Path(args.checkpoint).resolve()),
        "policy": loaded.description,
        "num_envs": args.num_envs,
        "seed": args.seed,
        "device": device,
        "overrides": overrides,
        **stats.to_dict(args.episodes),
        "per_episode": {"success": stats.success, "return": stats.returns, "length": stats.lengths},
    }
    if args.video:
        report["video"] = str(path.with_suffix(".mp4"))
    write_json(path, report)
    print(summary_line(report, path))
    return 0


def summary_line(report: dict, path: Path) -> str:
    """One line: the policy, the episodes, success rate, mean return and length, where the report went."""
    if not report["episodes"]:
        return f"[wam] play {report['task']} ({report['policy']}): no episode ended in {report['steps']} steps"
    return (
        f"[wam] play {report['task']} ({report['policy']}): {report['episodes']} episodes, success rate "
        f"{report['success_rate']:.3f}, mean return {report['mean_return']:.3f}, mean length "
        f"{report['mean_episode_length']:.1f}; wrote {path}"
    )


def write_json(path: Path, report: dict) -> None:
    """Write ``report`` atomically (a temp file renamed over ``path``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial-{os.getpid()}")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    os.replace(tmp, path)


def play(
    args: argparse.Namespace, overrides: list[str], device: str, loaded: LoadedCheckpoint, video: Path | None = None
):
    """Build the task's env (kit-less Newton on the CPU) and run the loaded policy in it; with ``video``, record env
    0's camera group for ``args.video_length`` steps to that MP4."""
    import gymnasium as gym

    entry_point = loaded.run.agent_entry_point if loaded.kind == "rsl_rl" else "rsl_rl_cfg_entry_point"
    env_cfg, agent_cfg = task_env_cfg(args.task, overrides, device, entry_point)
    env_cfg.scene.num_envs = args.num_envs
    env_cfg.seed = args.seed
    recorder = None
    if video is not None:
        from ..evaluation.video import CameraRecorder

        viewpoint = None
        if getattr(env_cfg.observations, "camera", None) is None:
            viewpoint = add_viewer(env_cfg, args.task, args.video_resolution)
        else:
            recorder = CameraRecorder(env_index=0, max_frames=args.video_length)
    with simulation(env_cfg, device):
        env = gym.make(args.task, cfg=env_cfg).unwrapped
        try:
            if video is not None and recorder is None:
                from ..envs.viewer_camera import ViewerRecorder

                recorder = ViewerRecorder(env, viewpoint, env_index=0, max_frames=args.video_length)
            stats = play_in_env(env, loaded, agent_cfg, args.episodes, args.seed, recorder=recorder)
            if recorder is not None:
                recorder.write(video, fps=1.0 / env.step_dt)
                print(f"[wam] play: wrote {len(recorder.frames)} frames of env 0 to {video}")
            return stats
        finally:
            env.close()


def add_viewer(env_cfg, task: str, resolution: int):
    """Add the task's viewer camera to ``env_cfg`` for ``--video``; returns its viewpoint."""
    from ..envs.viewer_camera import add_viewer_camera, viewpoint_for

    if resolution < 2:
        raise UsageError(f"--video_resolution {resolution}: the viewer camera needs at least 2 px a side")
    viewpoint = viewpoint_for(task, env_cfg)
    try:
        add_viewer_camera(env_cfg, viewpoint, resolution)
    except ValueError as error:
        raise UsageError(f"--video: {error}") from None
    return viewpoint


def play_in_env(env, loaded: LoadedCheckpoint, agent_cfg, episodes: int, seed: int = 0, recorder=None):
    """Run ``loaded`` in a live ``env`` of its task until ``episodes`` episodes ended; returns the
    :class:`~wam_isaac.evaluation.closed_loop.ClosedLoopStats`. ``agent_cfg``: the task's registered config of the
    run's agent entry point (rsl-rl checkpoints only). ``recorder(obs)``, if given, sees every step's observations
    (e.g. a :class:`~wam_isaac.evaluation.video.CameraRecorder`)."""
    from ..evaluation.closed_loop import run_closed_loop, run_policy_closed_loop

    if loaded.kind == "wam":
        check_wam_observations(env, loaded.model.schema)
        on_step = None if recorder is None else lambda step, window, actions, obs, done: recorder(obs)
        return run_closed_loop(
            env, loaded.model, loaded.model.schema, loaded.history, episodes, seed=seed, on_step=on_step
        )
    policy, on_reset = rsl_rl_policy(env, loaded.run, agent_cfg)
    if recorder is not None:
        acting = policy

        def policy(obs: dict):
            recorder(obs)  # the observation the action is taken on: the first frame is the reset's
            return acting(obs)

    return run_policy_closed_loop(env, policy, episodes, seed=seed, on_reset=on_reset)


def rsl_rl_policy(env, run, agent_cfg):
    """The run's actor as ``obs dict -> mean actions``, and its ``reset(dones)`` (recurrent state, previous action)."""
    import torch
    from tensordict import TensorDict

    from ..export import ExportError, load_policy

    try:
        _, actor, _ = load_policy(env, run, agent_cfg)
    except ExportError as error:
        raise UsageError(str(error)) from None

    def policy(obs: dict) -> torch.Tensor:
        with torch.inference_mode():
            return actor(TensorDict(obs, batch_size=[env.num_envs])).clone()

    def reset(dones: torch.Tensor) -> None:
        with torch.inference_mode():  # the recurrent state was made in inference mode
            actor.reset(dones)

    return policy, reset if hasattr(actor, "reset") else None


def check_wam_observations(env, schema) -> None:
    """Raise a :class:`UsageError` naming the first ``world_model`` / ``instruction`` term or the action whose
    presence or size differs between the WAM's schema and the live env."""
    from ..models.schema import SchemaError, WamSchema

    obs = env.observation_manager.compute()
    groups = {}
    for group in ("world_model", "instruction"):
        terms = obs.get(group, {})
        if not hasattr(terms, "items"):
            raise UsageError(f"observation group '{group}' of the task is concatenated; a WAM reads its terms")
        groups[group] = {f"obs/{group}/{term}": list(value.shape[1:]) for term, value in terms.items()}
    live = WamSchema(
        state_keys=groups["world_model"],
        instruction_keys=groups["instruction"],
        action_shape=[env.action_manager.total_action_dim],
    )
    mine = WamSchema(
        state_keys=schema.state_keys, instruction_keys=schema.instruction_keys, action_shape=schema.action_shape
    )
    try:
        mine.check_compatible(live, where="task's observation groups")
    except SchemaError as error:
        raise UsageError(str(error)) from None
