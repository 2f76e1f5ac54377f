"""Behaviour policies for data generation: ``random``, ``scripted`` (the task's expert) or an rsl-rl checkpoint.

Every policy maps the observation dict of a manager-based env to actions ``(num_envs, action_dim)`` in the task's
action units; :class:`ExplorationNoise` adds Gaussian noise on top (``noise_std``; actions are clipped only where
the task's action terms clip them).
A task provides its scripted expert through the gym registration key ``wam_expert_entry_point``
(``"module:Class"``, constructed with the env).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

Policy = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""Observation dict -> actions (num_envs, action_dim)."""

EXPERT_KEY = "wam_expert_entry_point"
"""Gym registration key naming a task's scripted expert (``"module:Class"``)."""

BUILTIN = ("random", "scripted")


class PolicyError(ValueError):
    """A behaviour policy that cannot be made (unknown name, task without expert, unreadable checkpoint)."""


class RandomPolicy:
    """Uniform random actions in [-1, 1]."""

    def __init__(self, env: ManagerBasedRLEnv):
        self.shape = (env.num_envs, env.action_manager.total_action_dim)
        self.device = env.device

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return torch.rand(self.shape, device=self.device) * 2.0 - 1.0


class ExplorationNoise:
    """Adds zero-mean Gaussian noise of standard deviation ``std`` [action units] to a policy's actions."""

    def __init__(self, policy: Policy, std: float):
        if std < 0:
            raise PolicyError(f"exploration noise must be >= 0, got {std}")
        self.policy, self.std = policy, std

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.policy(obs)
        if self.std == 0.0:
            return actions
        return actions + self.std * torch.randn_like(actions)


class CheckpointPolicy:
    """The actor of an rsl-rl checkpoint (``model_<i>.pt`` written by ``wam train`` / ``isaaclab train``), built from
    its run's ``params/agent.yaml`` over the agent config the run was trained with (``run.json``'s entry point: plain
    PPO, joint-WAM PPO...) as ``wam export`` loads it; it acts with the mean action. A recurrent actor's memory is
    zeroed for the envs whose episode has just begun (``env.episode_length_buf == 0``), as rsl-rl resets it at
    episode ends."""

    def __init__(self, env: ManagerBasedRLEnv, task: str, checkpoint: str | Path):
        from tensordict import TensorDict

        from isaaclab_tasks.utils import resolve_task_config

        from ..export import ExportError, load_policy, read_run

        try:
            run = read_run(checkpoint)
            if run.task != task:
                raise PolicyError(f"checkpoint '{checkpoint}' was trained on {run.task}, not on --task {task}")
            _, agent_cfg = resolve_task_config(task, run.agent_entry_point, overrides=[])
            _, self._policy, _ = load_policy(env, run, agent_cfg)
        except ExportError as error:
            raise PolicyError(str(error)) from None
        self._tensordict = TensorDict
        self._env = env
        self.recurrent = bool(getattr(self._policy, "is_recurrent", False))
        """Whether the actor carries a memory over the episode (reset where an episode begins)."""

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode():
            if self.recurrent:
                self._policy.reset((self._env.episode_length_buf == 0).long())
            batch = self._tensordict(obs, batch_size=[next(iter(obs.values())).shape[0]])
            return self._policy(batch).clone()


def make_policy(spec: str, env: ManagerBasedRLEnv, task: str, noise_std: float = 0.0) -> Policy:
    """The behaviour policy named ``spec``: ``random``, ``scripted`` or a path to an rsl-rl checkpoint."""
    if spec == "random":
        policy: Policy = RandomPolicy(env)
    elif spec == "scripted":
        policy = load_expert(task, env)
    elif Path(spec).is_file():
        policy = CheckpointPolicy(env, task, spec)
    else:
        raise PolicyError(f"unknown policy '{spec}'; expected random, scripted or a path to a checkpoint file")
    return ExplorationNoise(policy, noise_std)


def load_expert(task: str, env: ManagerBasedRLEnv) -> Policy:
    """Construct the scripted expert the task registered under :data:`EXPERT_KEY`."""
    import gymnasium as gym

    entry = gym.spec(task).kwargs.get(EXPERT_KEY)
    if entry is None:
        raise PolicyError(f"task {task} has no scripted expert (no '{EXPERT_KEY}' in its registration)")
    module, name = entry.split(":")
    return getattr(importlib.import_module(module), name)(env)


def has_expert(task: str) -> bool:
    """Whether ``task`` registered a scripted expert."""
    import gymnasium as gym

    return EXPERT_KEY in gym.spec(task).kwargs
