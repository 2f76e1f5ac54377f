"""``wam train``: rsl-rl PPO on a task through Isaac Lab's own training path.

Same flags as ``isaaclab train --rl_library rsl_rl``, with defaults that work on a machine without a GPU: the device
is ``cpu`` and the Newton (MuJoCo-Warp) physics preset is selected when CUDA is absent, and the agent runs on the
simulation's device. Runs log under ``logs/rsl_rl/<experiment>/<timestamp>/`` with TensorBoard events; at the end
the run directory and its last training figures are printed.

Several processes: ``--num_procs P`` (or ``torchrun --nproc_per_node=P -m wam_isaac train ...``, the same job) trains
one policy on P ranks, each with its own envs and seed (``seed + rank``), gradients averaged (rsl-rl's multi-GPU
path; WamPPO keeps its world model, normalizers and replay consistent too). On GPUs that is Isaac Lab's own
``--distributed`` (``cuda:<LOCAL_RANK>``, NCCL); on the CPU, where Isaac Lab refuses it, the ranks join a Gloo group.
Rank 0 logs and checkpoints; the other ranks' settings go to ``<run>/rank_<r>/``.

Preemption: SIGTERM or SIGUSR1 ends the run after the iteration in progress with a checkpoint ``model_<it>.pt`` and
exit 0; ``--checkpoint`` on it resumes (optimizer, normalizers, a WamPPO's replay and counters included).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    add_env_args,
    check_override_paths,
    check_task,
    positive_int,
    rank_context,
    resolve_device,
    split_overrides,
)
from .errors import UsageError

CHECKPOINT_SELECTORS = ("latest", "best")
"""Isaac Lab's ``--checkpoint`` selectors: the last (or best) checkpoint of the newest run of this task and agent."""
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
    parser.add_argument(
        "--checkpoint", default=None, help="checkpoint to resume training from (a file, or latest / best: Isaac Lab's)"
    )
    parser.add_argument(
        "--num_procs", type=positive_int, default=None, help="training processes (ranks) on this node, via torchrun"
    )
    parser.add_argument(
        "--distributed", action="store_true", help="run as one rank of a torchrun job (implied under torchrun)"
    )
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
    from ..distributed.ppo_runner import runner_installed, stop_request

    overrides = split_overrides(extra)
    check_task(args.task, args.agent)
    device = resolve_device(args.device)
    context = rank_context(args.num_procs)
    if args.distributed and not context.distributed:
        raise UsageError("--distributed needs torchrun's WORLD_SIZE/RANK: launch with torchrun, or use --num_procs P")
    if args.checkpoint not in (None, *CHECKPOINT_SELECTORS) and not Path(args.checkpoint).exists():
        raise UsageError(f"checkpoint '{args.checkpoint}' does not exist (a model_<it>.pt, or latest / best)")
    if args.num_procs is not None and args.num_procs > 1:
        from ..distributed.launch import launch, strip_option

        return launch(args.num_procs, ["train", *strip_option(_argv_of(args), "--num_procs"), *extra])
    stop_request()  # SIGTERM / SIGUSR1 from here on: a checkpoint after the first iteration instead of a kill

    from isaaclab_rl.entrypoints.api import TrainingRequest, train

    from isaaclab_tasks.utils import resolve_task_config

    env_cfg, agent_cfg = resolve_task_config(args.task, args.agent, overrides=[])
    check_override_paths(overrides, env_cfg, agent_cfg)
    pretrained = algorithm_setting(overrides, agent_cfg, "pretrained_checkpoint")
    if pretrained:  # WamPPO's fine-tuning start: a missing or wrong file is bad input, found before the simulator
        from ..training.wam_ppo_build import check_critic, load_pretrained

        shared = algorithm_setting(overrides, agent_cfg, "shared_critic")
        shared = shared.lower() not in ("false", "0", "no") if isinstance(shared, str) else shared is not False
        check_critic(load_pretrained(pretrained), shared, pretrained)
    seed, backend_args, distributed = args.seed, (), False
    if context.distributed and device.startswith("cuda"):
        distributed = True  # Isaac Lab's --distributed: cuda:<LOCAL_RANK>, seed + rank, NCCL in rsl-rl's runner
    elif context.distributed:
        seed, backend_args = _cpu_rank_settings(context, args.seed if args.seed is not None else agent_cfg.seed)

    log_root = Path("logs", "rsl_rl", agent_cfg.experiment_name).resolve()
    before = set(log_root.glob("*")) if log_root.is_dir() else set()
    try:
        with runner_installed():
            code = train(
                TrainingRequest(
                    backend="rsl_rl",
                    task=args.task,
                    agent=args.agent,
                    checkpoint=args.checkpoint,
                    num_envs=args.num_envs,
                    seed=seed,
                    max_iterations=args.max_iterations,
                    device=device,
                    distributed=distributed,
                    backend_args=backend_args,
                    hydra_args=tuple(hydra_args(overrides, device)),
                )
            )
    finally:
        context.shutdown()
    new_runs = sorted(set(log_root.glob("*")) - before) if log_root.is_dir() else []
    if new_runs and context.is_main:
        print(summarize_run(new_runs[-1]))
    return code


def algorithm_setting(overrides: list[str], agent_cfg, name: str):
    """The algorithm config's field ``name`` as the run will see it: ``agent.algorithm.<name>=...`` if overridden
    (the override's text; None for null), else the agent configuration's (None: absent, e.g. not a WamPPO agent);
    e.g. ``pretrained_checkpoint``, the WAM WamPPO will fine-tune."""
    for token in overrides:
        key, _, value = token.partition("=")
        if key.lstrip("+~") == f"agent.algorithm.{name}":
            value = value.strip("'\"")
            return None if value in ("", "null", "None") else value
    return getattr(getattr(agent_cfg, "algorithm", None), name, None)


def _argv_of(args: argparse.Namespace) -> list[str]:
    """This command's flags (without the Hydra overrides), as a rank's command line."""
    argv = ["--task", args.task, "--agent", args.agent]
    for name in ("num_envs", "device", "seed", "max_iterations", "checkpoint", "num_procs"):
        if getattr(args, name) is not None:
            argv += [f"--{name}", str(getattr(args, name))]
    return argv


def _cpu_rank_settings(context, seed: int) -> tuple[int, tuple[str, ...]]:
    """A CPU rank's seed (``seed + rank``, as Isaac Lab's ``--distributed`` does) and its run folder: rank 0's
    timestamp (sent over the Gloo group this joins), ``<timestamp>/rank_<r>`` for the other ranks (their settings;
    rsl-rl's logger writes nothing there)."""
    from datetime import datetime

    context.init("cpu")
    stamp = context.broadcast_object(datetime.now().strftime("%Y-%m-%d_%H-%M-%S") if context.is_main else None)
    folder = stamp if context.is_main else f"{stamp}/rank_{context.rank}"
    return seed + context.rank, ("--run_timestamp", folder)


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
