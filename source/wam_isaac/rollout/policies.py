"""Behaviour policies for data generation: ``random``, ``scripted`` (the task's expert), an rsl-rl checkpoint or a
``wam train-model`` joint / cascaded WAM checkpoint.

Every policy maps the observation dict of a manager-based env to actions ``(num_envs, action_dim)`` in the task's
action units; :class:`ExplorationNoise` adds Gaussian noise on top (``noise_std``; actions are clipped only where
the task's action terms clip them).
A task provides its scripted expert through the gym registration key ``wam_expert_entry_point``
(``"module:Class"``, constructed with the env).

DAgger (Ross et al. 2011): :class:`ExpertMixture` executes the expert's action instead of the learner's with
probability ``beta`` (per env and step), and ``wam generate --expert_labels`` records the expert's noise-free action
on every visited state beside the executed one.
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


class WamCheckpointPolicy:
    """The action head of a ``wam train-model`` joint or cascaded WAM (mean action), acting as ``wam play`` runs it:
    on a sliding window of each env's last ``H`` steps (the ``world_model`` and ``instruction`` groups and the
    previous action), filled with copies of the first step where an episode begins (previous actions 0).

    The window's previous action is the action the env executed (``env.action_manager.action``: noise or an expert
    mixture included, 0 after a reset), as in the datasets the WAM was trained on."""

    def __init__(self, env: ManagerBasedRLEnv, checkpoint: str | Path):
        from ..evaluation.closed_loop import HistoryWindow
        from ..models.schema import SchemaError, WamSchema
        from ..training.checkpoint import CheckpointError
        from ..training.run import load_model

        try:
            self.model, cfg, _ = load_model(checkpoint, env.device)
        except CheckpointError as error:
            raise PolicyError(str(error)) from None
        if not cfg.model.has_policy:
            raise PolicyError(f"'{checkpoint}' is a '{cfg.model.kind}' world model without an action head")
        self.schema = self.model.schema
        live = WamSchema.from_observations(env.observation_manager.compute(), [env.action_manager.total_action_dim])
        try:
            self.schema.check_observations_compatible(live)
        except SchemaError as error:
            raise PolicyError(f"'{checkpoint}': {error}") from None
        self.env = env
        self.window = HistoryWindow(env.num_envs, cfg.train.history, self.schema, env.device)
        """Each env's last ``H`` steps: states (N, H, S), instructions (N, H, I), previous actions (N, H, A)."""

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        from ..evaluation.closed_loop import observed

        states, instruction = observed(obs, self.schema, self.env.num_envs)
        with torch.inference_mode():
            self.window.push(states, instruction, self.env.action_manager.action.to(states.dtype))
            begun = (self.env.episode_length_buf == 0).nonzero()[:, 0]
            self.window.reset(begun, states, instruction)
            return self.model.act(self.window.states, self.window.instruction, self.window.prev_actions).clone()


class ExpertMixture:
    """DAgger's behaviour policy ``beta * expert + (1 - beta) * learner``: each env executes the expert's action with
    probability ``beta`` at each step, the learner's otherwise."""

    def __init__(self, learner: Policy, expert: Policy, beta: float):
        if not 0.0 <= beta <= 1.0:
            raise PolicyError(f"beta must be in [0, 1], got {beta}")
        self.learner, self.expert, self.beta = learner, expert, beta

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        learner = self.learner(obs)  # always called: a learner with a memory keeps it current
        if self.beta == 0.0:
            return learner
        expert = self.expert(obs)
        chosen = torch.rand(learner.shape[0], 1, device=learner.device) < self.beta
        return torch.where(chosen, expert, learner)


def is_wam_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a ``wam train-model`` checkpoint (else: an rsl-rl one, or not a checkpoint)."""
    import zipfile

    from ..training.checkpoint import FORMAT

    if not zipfile.is_zipfile(path):
        return False
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # torch raises many types for archives it cannot read: then it is not ours
        return False
    return isinstance(payload, dict) and payload.get("format") == FORMAT


def make_policy(
    spec: str,
    env: ManagerBasedRLEnv,
    task: str,
    noise_std: float = 0.0,
    beta: float = 0.0,
    expert: Policy | None = None,
) -> Policy:
    """The behaviour policy named ``spec``: ``random``, ``scripted``, or a path to an rsl-rl or ``wam train-model``
    checkpoint; with ``beta`` > 0 mixed with the task's expert (``expert``, or the registered one) as DAgger's
    :class:`ExpertMixture`; then ``noise_std`` of exploration noise on the executed action."""
    if spec == "random":
        policy: Policy = RandomPolicy(env)
    elif spec == "scripted":
        policy = expert or load_expert(task, env)
    elif Path(spec).is_file():
        policy = WamCheckpointPolicy(env, spec) if is_wam_checkpoint(spec) else CheckpointPolicy(env, task, spec)
    else:
        raise PolicyError(f"unknown policy '{spec}'; expected random, scripted or a path to a checkpoint file")
    if beta > 0.0:
        policy = ExpertMixture(policy, expert or load_expert(task, env), beta)
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
