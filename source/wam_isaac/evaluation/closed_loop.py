"""Action plausibility: a WAM's action head in control of the real simulator, closed loop.

Every env keeps a sliding window of its last ``H`` steps: the state (the ``world_model`` observation group's terms
concatenated in the model's schema order), the instruction (the ``instruction`` group) and the previous action. At
each step the model's mean action for the last step of every window goes to the env. When an env resets (Isaac Lab
resets it inside ``env.step`` and returns its first observation), its window is filled with copies of that first
step, previous actions 0 (what the start of an episode looks like in training: ``a_{-1} = 0``).

Reported over the first ``episodes`` episodes to end, each env contributing at most its first
``ceil(episodes / num_envs)`` (so short episodes, often the successful ones, are not over-counted): success rate
(the task's ``success`` termination, as :func:`wam_isaac.rollout.driver.episode_success` decides it), mean return
and length, action smoothness (mean ``|a_t - a_{t-1}|`` over the entries of consecutive actions within an episode)
and limit compliance (fraction
of action entries within ``[-1, 1]``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from ..models.schema import WamSchema


def group_vector(obs: dict, group: str, keys: dict[str, list[int]], num_envs: int) -> torch.Tensor:
    """The terms of a non-concatenated observation group, flattened and concatenated in ``keys`` order
    (``obs/<group>/<term>`` dataset keys), (num_envs, D); (num_envs, 0) when ``keys`` is empty."""
    terms = obs.get(group, {}) if keys else {}
    parts = [terms[key.rsplit("/", 1)[-1]].reshape(num_envs, -1) for key in keys]
    return torch.cat(parts, dim=-1) if parts else torch.zeros(num_envs, 0)


class HistoryWindow:
    """Per-env sliding windows of the last ``history`` states, instructions and previous actions."""

    def __init__(self, num_envs: int, history: int, schema: WamSchema, device: torch.device | str) -> None:
        self.states = torch.zeros(num_envs, history, schema.state_dim, device=device)
        """States [physical units], (N, H, S); the last row is the current step."""
        self.instruction = torch.zeros(num_envs, history, schema.instruction_dim, device=device)
        """Instructions, (N, H, I)."""
        self.prev_actions = torch.zeros(num_envs, history, schema.action_dim, device=device)
        """``a_{t-1}`` of every row, (N, H, A)."""

    def reset(self, env_ids: torch.Tensor, states: torch.Tensor, instruction: torch.Tensor) -> None:
        """Fill the windows of ``env_ids`` with copies of their first step (rows of ``states`` and ``instruction``,
        indexed by env), previous actions 0."""
        history = self.states.shape[1]
        self.states[env_ids] = states[env_ids, None].expand(-1, history, -1)
        self.instruction[env_ids] = instruction[env_ids, None].expand(-1, history, -1)
        self.prev_actions[env_ids] = 0.0

    def push(self, states: torch.Tensor, instruction: torch.Tensor, actions: torch.Tensor) -> None:
        """Append the new step of every env (its state, instruction, and the action just taken), dropping the
        oldest."""
        self.states = torch.cat((self.states[:, 1:], states[:, None]), dim=1)
        self.instruction = torch.cat((self.instruction[:, 1:], instruction[:, None]), dim=1)
        self.prev_actions = torch.cat((self.prev_actions[:, 1:], actions[:, None]), dim=1)


@dataclass
class ClosedLoopStats:
    """Per-episode results of a closed-loop run."""

    success: list[bool] = field(default_factory=list)
    """Whether each finished episode ended in the task's success termination."""
    returns: list[float] = field(default_factory=list)
    """Sum of rewards of each finished episode."""
    lengths: list[int] = field(default_factory=list)
    """Steps of each finished episode."""
    action_change_sum: float = 0.0
    """Sum of ``|a_t - a_{t-1}|`` over entries of consecutive actions within episodes."""
    action_change_count: int = 0
    """Number of entries summed in :attr:`action_change_sum`."""
    actions_within_limits: int = 0
    """Action entries within [-1, 1]."""
    action_entries: int = 0
    """Action entries sent."""
    steps: int = 0
    """Env steps run (each advances every env)."""

    def to_dict(self, episodes: int) -> dict:
        """The metrics over the first ``episodes`` finished episodes."""
        n = min(episodes, len(self.success))
        return {
            "applicable": True,
            "episodes": n,
            "steps": self.steps,
            "success_rate": sum(self.success[:n]) / n if n else None,
            "mean_return": sum(self.returns[:n]) / n if n else None,
            "mean_episode_length": sum(self.lengths[:n]) / n if n else None,
            "action_smoothness": self.action_change_sum / max(self.action_change_count, 1),
            "limit_compliance": self.actions_within_limits / max(self.action_entries, 1),
        }


StepHook = Callable[[int, HistoryWindow, torch.Tensor, dict, torch.Tensor], None]
"""``hook(step, window, actions, next_obs, done)``: called after every env step with the window the actions were
computed from (before it is updated), the actions sent, the observations returned and the done flags."""


@torch.no_grad()
def run_closed_loop(
    env,
    model: nn.Module,
    schema: WamSchema,
    history: int,
    episodes: int,
    max_steps: int | None = None,
    seed: int = 0,
    on_step: StepHook | None = None,
) -> ClosedLoopStats:
    """Control ``env`` (an Isaac Lab ``ManagerBasedRLEnv``) with ``model.act`` until ``episodes`` episodes ended
    (or ``max_steps`` steps ran; default: enough for every env to finish ``ceil(episodes / num_envs) + 1``
    episodes)."""
    n, device = env.num_envs, env.device
    if max_steps is None:
        max_steps = (-(-episodes // n) + 1) * int(env.max_episode_length + 1)
    obs, _ = env.reset(seed=seed)
    window = HistoryWindow(n, history, schema, device)
    window.reset(torch.arange(n, device=device), *observed(obs, schema, n))
    stats = ClosedLoopStats()
    quota = -(-episodes // n)
    finished = [0] * n
    returns = torch.zeros(n, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    while len(stats.success) < episodes and stats.steps < max_steps:
        actions = model.act(window.states, window.instruction, window.prev_actions)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        done = terminated | truncated
        stats.steps += 1
        record_actions(stats, actions, window.prev_actions[:, -1], lengths > 0)
        returns += rewards
        lengths += 1
        if done.any():
            record_episodes(stats, env, terminated, truncated, returns, lengths, finished, quota)
        if on_step is not None:
            on_step(stats.steps - 1, window, actions, obs, done)
        states, instruction = observed(obs, schema, n)
        window.push(states, instruction, actions)
        if done.any():
            window.reset(done.nonzero()[:, 0], states, instruction)
            returns[done], lengths[done] = 0.0, 0
    return stats


def observed(obs: dict, schema: WamSchema, num_envs: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The state and instruction vectors (num_envs, S), (num_envs, I) of an env's observations."""
    states = group_vector(obs, "world_model", schema.state_keys, num_envs)
    return states, group_vector(obs, "instruction", schema.instruction_keys, num_envs).to(states.device)


def record_actions(stats: ClosedLoopStats, actions: torch.Tensor, previous: torch.Tensor, continuing) -> None:
    """Add one step's actions (N, A) to the smoothness and limit figures; ``continuing`` (N,) marks envs whose
    previous action belongs to the same episode."""
    change = (actions - previous)[continuing].abs()
    stats.action_change_sum += float(change.sum())
    stats.action_change_count += change.numel()
    stats.actions_within_limits += int((actions.abs() <= 1.0).sum())
    stats.action_entries += actions.numel()


def record_episodes(stats: ClosedLoopStats, env, terminated, truncated, returns, lengths, finished, quota: int) -> None:
    """Add the episodes that ended at this step (``terminated | truncated``) to ``stats``: each env contributes its
    first ``quota`` episodes only, so short episodes are not over-represented; ``finished`` counts every env's."""
    from ..rollout.driver import episode_success

    success = episode_success(env, terminated, truncated)
    for i in (terminated | truncated).nonzero()[:, 0].tolist():
        if finished[i] < quota:
            stats.success.append(bool(success[i]))
            stats.returns.append(float(returns[i]))
            stats.lengths.append(int(lengths[i]))
        finished[i] += 1


def not_applicable(reason: str) -> dict:
    """The closed-loop section of a report that was not run."""
    return {"applicable": False, "reason": reason}


ObservationPolicy = Callable[[dict], torch.Tensor]
"""An env's observation dict -> actions (num_envs, A), e.g. an rsl-rl actor (mean action) behind a TensorDict."""


@torch.no_grad()
def run_policy_closed_loop(
    env,
    policy: ObservationPolicy,
    episodes: int,
    max_steps: int | None = None,
    seed: int = 0,
    on_reset: Callable[[torch.Tensor], None] | None = None,
) -> ClosedLoopStats:
    """:func:`run_closed_loop` for a policy of the env's own observations (no history window): control ``env`` with
    ``policy(obs)`` until ``episodes`` episodes ended, with the same per-env quota and the same figures.
    ``on_reset(done)`` (done flags (num_envs,)) is called after every step in which an env ended, e.g. to reset a
    recurrent policy's hidden state."""
    n, device = env.num_envs, env.device
    if max_steps is None:
        max_steps = (-(-episodes // n) + 1) * int(env.max_episode_length + 1)
    obs, _ = env.reset(seed=seed)
    stats = ClosedLoopStats()
    quota = -(-episodes // n)
    finished = [0] * n
    returns = torch.zeros(n, device=device)
    lengths = torch.zeros(n, dtype=torch.long, device=device)
    previous = torch.zeros(n, env.action_manager.total_action_dim, device=device)
    while len(stats.success) < episodes and stats.steps < max_steps:
        actions = policy(obs)
        obs, rewards, terminated, truncated, _ = env.step(actions)
        done = terminated | truncated
        stats.steps += 1
        record_actions(stats, actions, previous, lengths > 0)
        returns += rewards
        lengths += 1
        previous = actions.clone()
        if done.any():
            record_episodes(stats, env, terminated, truncated, returns, lengths, finished, quota)
            returns[done], lengths[done] = 0.0, 0
            if on_reset is not None:
                on_reset(done)
    return stats
