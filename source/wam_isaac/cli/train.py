"""``wam train``: rsl-rl PPO on a task through Isaac Lab's own training path.

Same flags as ``isaaclab train --rl_library rsl_rl``, with defaults that work on a machine without a GPU: the device
is ``cpu`` and the Newton (MuJoCo-Warp) physics preset is selected when CUDA is absent, and the agent runs on the
simulation's device. Runs log under ``logs/rsl_rl/<experiment>/<timestamp>/`` with TensorBoard events; at the end
the run directory and its last training figures are printed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import add_env_args, check_override_paths, check_task, positive_int, resolve_device, split_overrides
from .errors import UsageError

SUMMARY_TAGS = ("Train/mean_reward", "Train/mean_episode_length", "Metrics/success_rate")
"""TensorBoard scalars summarized at the end of a run (those the run logged)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a policy with rsl-rl PPO (Isaac Lab's training path)",
        description=__doc__,
        epilog="Hydra overrides follow the flags: env.<field>=..., agent.<field>=..., presets=<name>.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_env_args(parser)
    parser.add_argument("--max_iterations", type=positive_int, default=None, help="PPO iterations")
    parser.add_argument("--agent", default="rsl_rl_cfg_entry_point", help="agent configuration entry point of the task")
    parser.add_argument("--checkpoint", default=None, help="checkpoint to resume training from")
    parser.set_defaults(run=run)


def hydra_args(overrides: list[str], device: str) -> list[str]:
    """The user's overrides plus the CPU defaults they did not set themselves."""
    import torch

    keys = {token.split("=", 1)[0].lstrip("+~") for token in overrides}
    args = list(overrides)
    if "agent.device" not in keys:
        args.append(f"agent.device={device}")
    if not torch.cuda.is_available() and not keys & {"presets", "physics"}:
        args.append("presets=newton_mjwarp")
    return args


def run(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = split_overrides(extra)
    check_task(args.task, args.agent)
    device = resolve_device(args.device)

    from isaaclab_rl.entrypoints.api import TrainingRequest, train

    from isaaclab_tasks.utils import resolve_task_config

    env_cfg, agent_cfg = resolve_task_config(args.task, args.agent, overrides=[])
    check_override_paths(overrides, env_cfg, agent_cfg)
    if args.checkpoint is not None and not Path(args.checkpoint).exists():
        raise UsageError(f"checkpoint '{args.checkpoint}' does not exist")

    log_root = Path("logs", "rsl_rl", agent_cfg.experiment_name).resolve()
    before = set(log_root.glob("*")) if log_root.is_dir() else set()
    code = train(
        TrainingRequest(
            backend="rsl_rl",
            task=args.task,
            agent=args.agent,
            checkpoint=args.checkpoint,
            num_envs=args.num_envs,
            seed=args.seed,
            max_iterations=args.max_iterations,
            device=device,
            hydra_args=tuple(hydra_args(overrides, device)),
        )
    )
    new_runs = sorted(set(log_root.glob("*")) - before) if log_root.is_dir() else []
    if new_runs:
        print(summarize_run(new_runs[-1]))
    return code


def summarize_run(run_dir: Path) -> str:
    """One line: where the run was logged and the last value of each :data:`SUMMARY_TAGS` scalar it logged."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = set(events.Tags()["scalars"])
    figures = [f"{tag}={events.Scalars(tag)[-1].value:.4g}" for tag in SUMMARY_TAGS if tag in tags]
    checkpoints = sorted(run_dir.glob("model_*.pt"), key=lambda p: int(p.stem.split("_")[1]))
    last = f", checkpoint {checkpoints[-1].name}" if checkpoints else ""
    return f"[wam] run logged in {run_dir}{last}: " + ", ".join(figures)
