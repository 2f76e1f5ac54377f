"""Argument handling shared by the subcommands: task lookup, device choice, Hydra override checks."""

from __future__ import annotations

import argparse
import contextlib
import re
from collections.abc import Iterator

from .errors import UsageError

OVERRIDE_RE = re.compile(r"^[+~]?(?P<key>[A-Za-z_][\w]*(\.[\w]+)*)=(?P<value>.*)$")
"""A Hydra override ``[+|~]key.path=value``."""

PRESET_KEYS = ("presets", "physics", "renderer")
"""Isaac Lab's typed preset selectors, accepted without a path check."""


def positive_int(text: str) -> int:
    """argparse type for counts that must be >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def add_env_args(parser: argparse.ArgumentParser, num_envs_help: str = "number of parallel environments") -> None:
    """Isaac Lab's environment flags: ``--task``, ``--num_envs``, ``--device``, ``--seed``."""
    parser.add_argument("--task", required=True, help="task id, e.g. WAM-Cartpole (see `wam tasks`)")
    parser.add_argument("--num_envs", type=positive_int, default=None, help=num_envs_help)
    parser.add_argument(
        "--device",
        default=None,
        help="simulation and learning device: cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)",
    )
    parser.add_argument("--seed", type=int, default=None, help="seed of the environment and the agent")


def resolve_device(device: str | None) -> str:
    """The device to run on: ``cuda:0`` when CUDA is available and none was asked for, else ``cpu``."""
    import torch

    if device is None:
        return "cuda:0" if torch.cuda.is_available() else "cpu"
    if not re.fullmatch(r"cpu|cuda(:\d+)?", device):
        raise UsageError(f"unknown device '{device}'; expected cpu, cuda or cuda:N")
    if device.startswith("cuda"):
        if not torch.cuda.is_available():
            raise UsageError(f"device '{device}' requested but CUDA is not available here; use --device cpu")
        index = int(device.split(":")[1]) if ":" in device else 0
        if index >= torch.cuda.device_count():
            raise UsageError(f"device '{device}' does not exist; this machine has {torch.cuda.device_count()} GPU(s)")
    return device


def rank_context(num_procs: int | None = None):
    """This process's place in a torchrun job (:class:`~wam_isaac.distributed.context.DistContext`; one rank without
    torchrun's variables). ``num_procs`` is the command's ``--num_procs``, which starts the ranks itself and so is
    refused under torchrun."""
    from ..distributed.context import from_environment

    try:
        context = from_environment()
    except ValueError as error:
        raise UsageError(str(error)) from None
    if context.distributed and num_procs is not None:
        raise UsageError("--num_procs starts the ranks itself: under torchrun leave it out")
    return context


def registered_task_ids(prefix: str = "") -> list[str]:
    """Ids of the registered Isaac Lab tasks starting with ``prefix`` (WAM tasks are imported first)."""
    import gymnasium as gym

    import wam_isaac_tasks  # noqa: F401  (registers the WAM tasks)

    return sorted(spec.id for spec in gym.registry.values() if spec.id.startswith(prefix) and _is_isaaclab(spec))


def _is_isaaclab(spec) -> bool:
    return isinstance(spec.kwargs, dict) and "env_cfg_entry_point" in spec.kwargs


def check_task(task: str, agent_entry_point: str = "rsl_rl_cfg_entry_point") -> None:
    """Raise a :class:`UsageError` unless ``task`` is registered with an ``agent_entry_point`` config."""
    import gymnasium as gym

    from wam_isaac_tasks import TASK_PREFIX

    wam_tasks = registered_task_ids(TASK_PREFIX)
    if task not in gym.registry and not task.startswith(TASK_PREFIX):
        import isaaclab_tasks  # noqa: F401  (Isaac Lab's own tasks, e.g. Isaac-Cartpole-Direct)
    if task not in gym.registry:
        raise UsageError(f"unknown task '{task}'; WAM tasks are: {', '.join(wam_tasks)}")
    if agent_entry_point not in gym.spec(task).kwargs:
        raise UsageError(f"task '{task}' has no '{agent_entry_point}' agent configuration")


def split_overrides(
    extra: list[str], roots: tuple[str, ...] = ("env", "agent"), presets=PRESET_KEYS, hint: str | None = None
) -> list[str]:
    """Check that every leftover argument is a Hydra override ``<root>.x=...`` (``env.`` / ``agent.`` unless
    ``roots`` says otherwise) or a preset selector.

    Args:
        hint: if given, what a right override looks like for this command, said in every error instead of the
            default messages.

    Raises:
        UsageError: naming the first argument that is not one.
    """
    for token in extra:
        if token.startswith("-"):
            raise UsageError(f"unknown option '{token}'")
        match = OVERRIDE_RE.match(token)
        key = match.group("key") if match else None
        if hint is not None and (key is None or (key.split(".")[0] not in roots and key not in presets)):
            raise UsageError(f"bad override '{token}': {hint}")
        if key is None:
            raise UsageError(
                f"malformed override '{token}'; expected key=value, e.g. env.scene.num_envs=64 or agent.seed=1"
            )
        if key.split(".")[0] not in roots and key not in presets:
            raise UsageError(
                f"override '{token}' must start with env. or agent. (or be one of {', '.join(PRESET_KEYS)}=...)"
            )
    return list(extra)


def check_override_paths(overrides: list[str], env_cfg, agent_cfg) -> None:
    """Raise a :class:`UsageError` for an override whose path names no field of the env or agent config."""
    roots = {"env": env_cfg, "agent": agent_cfg}
    for token in overrides:
        match = OVERRIDE_RE.match(token)
        key = match.group("key")
        if key in PRESET_KEYS or token.startswith("+"):
            continue
        root, *path = key.split(".")
        node = roots[root]
        for depth, name in enumerate(path):
            if isinstance(node, dict):
                found, node = name in node, node.get(name)
            else:
                found, node = hasattr(node, name), getattr(node, name, None)
            if not found:
                where = ".".join([root, *path[:depth]])
                raise UsageError(f"override '{token}': '{where}' has no field '{name}'")


def task_env_cfg(task: str, overrides: list[str], device: str, entry_point: str = "rsl_rl_cfg_entry_point"):
    """``(env_cfg, agent_cfg)`` of ``task`` with the ``env.<field>=...`` overrides applied (each checked against the
    env config first: a :class:`UsageError` names an unknown field), on ``device``, with Newton's MuJoCo-Warp
    physics preset where CUDA is missing (Isaac Lab's default preset needs Isaac Sim's PhysX there)."""
    import torch

    from isaaclab_tasks.utils import resolve_task_config

    if overrides:
        env_cfg, _ = resolve_task_config(task, entry_point, overrides=[])
        check_override_paths(overrides, env_cfg, None)
    hydra = list(overrides) + ([] if torch.cuda.is_available() else ["presets=newton_mjwarp"])
    env_cfg, agent_cfg = resolve_task_config(task, entry_point, overrides=hydra)
    env_cfg.sim.device = device
    return env_cfg, agent_cfg


@contextlib.contextmanager
def simulation(env_cfg, device: str) -> Iterator[None]:
    """Isaac Lab's ``launch_simulation`` for ``env_cfg`` on ``device``, with a :class:`UsageError` raised inside it
    re-raised after the simulation has closed (:func:`wam_isaac.envs.simulation.launched`): a usage error is one
    line, not launch_simulation's traceback."""
    from ..envs.simulation import launched

    with launched(env_cfg, device, (UsageError,)):
        yield
