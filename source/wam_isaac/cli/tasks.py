"""``wam tasks``: the WAM tasks, their environment configuration and their agents."""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("tasks", help="list the WAM tasks", description=__doc__)
    parser.add_argument("--all", action="store_true", help="also list Isaac Lab's own tasks")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    import gymnasium as gym

    from wam_isaac_tasks import TASK_PREFIX

    from .common import registered_task_ids, split_overrides

    split_overrides(extra)
    if args.all:
        import isaaclab_tasks  # noqa: F401
    ids = registered_task_ids("" if args.all else TASK_PREFIX)
    width = max(len(task) for task in ids)
    for task in ids:
        kwargs = gym.spec(task).kwargs
        agents = sorted(key.removesuffix("_cfg_entry_point") for key in kwargs if key.endswith("_cfg_entry_point"))
        agents = [name for name in agents if name != "env"]
        print(f"{task:<{width}}  {kwargs['env_cfg_entry_point']}  agents: {', '.join(agents)}")
    return 0
