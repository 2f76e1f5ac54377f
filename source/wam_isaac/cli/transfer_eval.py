"""``wam transfer-eval``: an exported policy (``wam export``), run through the deploy runtime (onnxruntime, numpy), in
control of the task's Isaac Lab env under (a) the training randomization, (b) held-out wider randomization ranges,
(c) observation delay and noise beyond training, (d) another physics solver setting (substeps). Reports, per
condition, the success rate, mean return and episode length, and the surprise monitor's alarm rate (exports with a
world model): a table, and JSON with ``--json``. Hydra overrides of the env (``env.<field>=...``, e.g.
``env.episode_length_s=3``) follow the flags and apply to every condition.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from .common import check_override_paths, positive_int, resolve_device, split_overrides
from .errors import UsageError


def add_parser(subparsers) -> None:
    from ..export.transfer import CONDITIONS

    parser = subparsers.add_parser(
        "transfer-eval", help="run an exported policy under held-out conditions", description=__doc__
    )
    parser.add_argument("--exported", required=True, help="export directory written by wam export")
    parser.add_argument("--task", required=True, help="task id the policy was exported for, e.g. WAM-Push-Cube")
    parser.add_argument("--num_envs", type=positive_int, default=8, help="parallel envs (one runtime each)")
    parser.add_argument("--episodes", type=positive_int, default=16, help="episodes per condition")
    parser.add_argument("--conditions", nargs="+", choices=CONDITIONS, default=list(CONDITIONS), help="what to run")
    parser.add_argument("--device", default=None, help="simulation device (default: cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the envs and of the observation noise")
    parser.add_argument("--json", default=None, help="write the report to this JSON file (atomically)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..deploy import MetadataError, Policy, SurpriseMonitor, load_metadata
    from ..export.transfer import transfer_eval

    overrides = split_overrides(extra)
    if any(not token.lstrip("+~").startswith("env.") for token in overrides):
        raise UsageError(f"transfer-eval takes env.<field>=... overrides only, got {' '.join(overrides)}")
    try:
        metadata = load_metadata(args.exported)
    except MetadataError as error:
        raise UsageError(f"--exported: {error}") from None
    if metadata.get("policy") is None:
        raise UsageError(f"--exported {args.exported} holds a world model only; transfer-eval runs a policy")
    if metadata["task"] != args.task:
        raise UsageError(f"--exported {args.exported} was exported for {metadata['task']}, not --task {args.task}")
    try:  # what each env's runtime will load, refused here rather than with the simulator up
        Policy.load(args.exported)
        if metadata.get("world_model") is not None:
            SurpriseMonitor.load(args.exported)
    except MetadataError as error:
        raise UsageError(f"--exported: {error}") from None
    if args.json is not None and not Path(args.json).resolve().parent.is_dir():
        raise UsageError(f"--json {args.json}: directory {Path(args.json).resolve().parent} does not exist")
    device = resolve_device(args.device or "cpu")
    if overrides:
        from isaaclab_tasks.utils import resolve_task_config

        import wam_isaac_tasks  # noqa: F401  (registers the tasks)

        env_cfg, agent_cfg = resolve_task_config(args.task, "rsl_rl_cfg_entry_point", overrides=[])
        check_override_paths(overrides, env_cfg, agent_cfg)
    results = transfer_eval(
        args.exported, args.task, args.conditions, args.num_envs, args.episodes, device, args.seed, overrides=overrides
    )
    report = {"exported": str(Path(args.exported).resolve()), "task": args.task, "conditions": results}
    print(table(results, metadata.get("world_model") is not None))
    if args.json is not None:
        temp = Path(args.json).with_name(f".{Path(args.json).name}.tmp")
        temp.write_text(json.dumps(report, indent=2) + "\n")
        os.replace(temp, args.json)
        print(f"[wam] report written to {args.json}")
    return 0


def table(results: dict, monitored: bool) -> str:
    """The per-condition figures as a fixed-width table."""
    header = f"{'condition':<17}{'episodes':>9}{'success':>9}{'return':>10}{'length':>8}"
    header += (
        f"{'alarm rate':>12}{'stall':>8}{'alarmed ep':>12}{'of ok':>8}{'of failed':>11}{'surprise':>10}"
        if monitored
        else ""
    )
    lines = [header]
    for name, r in results.items():
        line = f"{name:<17}{r['episodes']:>9}{_fmt(r['success_rate'], '.1%'):>9}{_fmt(r['mean_return'], '.2f'):>10}"
        line += f"{_fmt(r['mean_episode_length'], '.1f'):>8}"
        if monitored:
            line += f"{_fmt(r['alarm_rate'], '.1%'):>12}{_fmt(r.get('stall_alarm_rate'), '.1%'):>8}"
            line += f"{_fmt(r.get('episodes_alarmed'), '.1%'):>12}{_fmt(r.get('successes_alarmed'), '.1%'):>8}"
            line += f"{_fmt(r.get('failures_alarmed'), '.1%'):>11}{_fmt(r['mean_surprise'], '.2f'):>10}"
        lines.append(line)
    return "\n".join(lines)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)
