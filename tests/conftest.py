"""Shared fixtures. Integration tests start real Isaac Lab environments on the CPU (Newton backend)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import pytest


@contextlib.contextmanager
def isaaclab_env(task: str, num_envs: int, configure: Callable | None = None) -> Iterator:
    """A real Isaac Lab env of ``task`` on the CPU with ``num_envs`` envs; ``configure(env_cfg)`` edits the config
    before the env is built. Closed on exit."""
    import gymnasium as gym

    from isaaclab.app import launch_simulation

    from isaaclab_tasks.utils import resolve_task_config

    import wam_isaac_tasks  # noqa: F401

    env_cfg, _ = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=[])
    env_cfg.scene.num_envs = num_envs
    env_cfg.sim.device = "cpu"
    env_cfg.seed = 0
    if configure is not None:
        configure(env_cfg)
    with launch_simulation(env_cfg, {"device": "cpu"}):
        env = gym.make(task, cfg=env_cfg).unwrapped
        try:
            yield env
        finally:
            env.close()


@pytest.fixture(scope="session")
def make_env():
    """The :func:`isaaclab_env` context manager, as a fixture."""
    return isaaclab_env
