"""Imagination: MBPO-style branched rollouts of the current policy through a joint WAM's learned model.

From real histories (windows of recorded steps, e.g. from the replay), each imagined env rolls the policy out for at
most ``horizon`` steps through one member of a dynamics ensemble; the transitions carry everything PPO needs.

The ensemble on a shared trunk (:class:`DynamicsEnsemble`): member 0 is the WAM's own dynamics head (trained by the
world-model loss with the trunk), members 1..K-1 are extra heads of the same architecture, independently initialized,
reading the same trunk features, trained by :func:`ensemble_loss` on detached features (so they never pull the trunk
towards themselves). Their spread is the epistemic uncertainty of the model's next step given the shared
representation (not of the representation itself: one trunk, K heads, as in a multi-head ensemble).

One imagined step ``k`` of env ``e`` (member ``m = e mod K``), from trunk features ``h_k``:

- ``a_k ~ pi(. | h_k)`` (the policy, stochastic), its log-probability (summed over dimensions), ``V_k = V(h_k)``;
- every member predicts the normalized change; ``s_{k+1}`` = ``s_k`` composed with member ``m``'s mean change;
- disagreement ``u_k`` = mean over the D state-change dimensions of the members' standard deviation (population,
  over the K predicted means, in normalized change units: about the spread of a typical one-step change, whatever
  the task's D); 0 with one member;
- done ``d_k`` where member ``m``'s termination probability exceeds ``done_threshold``; the env then stops (its
  later steps are not transitions: ``alive`` is False); at the horizon cap it is not done and its value bootstraps
  ``V(h_horizon)``;
- reward ``r_k`` in physical units: member ``m``'s reward head (``reward_source="head"``), or the task's reward
  function on ``(s_k, a_k, s_{k+1}, g, d_k)`` (``"task"``); the PPO reward is ``r_k - uncertainty_penalty * u_k``;
- returns and advantages by GAE over the imagined horizon.

Everything runs under ``torch.no_grad`` on the WAM's device. Nothing here updates a normalizer (the WAM's are fixed
buffers, changed only by ``fit``); the actor's recurrent hidden state is saved and restored around the rollout (the
rollout runs the trunk on its own memory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch
from torch import nn

from isaaclab.utils import configclass

from ..models.wam import JointWAM
from ..models.world_model import DynamicsHead, StepPrediction, previous_actions
from .objectives import LossCfg, step_losses
from .sequences import Sequences


@configclass
class ImaginationCfg:
    """MBPO-style branched rollouts through the learned model (:func:`imagine`)."""

    enabled: bool = False
    """Add imagined transitions to the PPO batch; off by default."""
    num_envs: int = 256
    """Imagined envs rolled out per iteration (each from one real history)."""
    horizon: int = 16
    """Cap on the imagined steps of an env [steps]; at the cap the return bootstraps the value."""
    batch_ratio: float = 0.5
    """Imagined transitions joining the PPO batch per real transition (fewer if fewer are alive)."""
    uncertainty_penalty: float = 1.0
    """Weight of the ensemble disagreement (the members' std of the normalized change, mean over dimensions) subtracted
    from the imagined rewards [reward units per normalized change]."""
    reward_source: str = "head"
    """``head``: the WAM's reward head (member of the env); ``task``: the task's reward function on the predicted
    states (a ``reward_fn`` given to :func:`imagine`)."""
    ensemble_size: int = 4
    """K: dynamics heads on the shared trunk (the WAM's own and K - 1 extra, see :class:`DynamicsEnsemble`)."""
    warmup_iterations: int = 50
    """PPO iterations before imagination starts (the model first learns from real data)."""
    done_threshold: float = 0.5
    """Termination probability (the env's member's termination head) above which an imagined env ends. A calibrated
    head on a task whose terminations are rare rarely exceeds 0.5 before the step itself (on Push-Cube's held-out
    successes an offline joint WAM ranks terminal steps first, ROC AUC > 0.9, at probabilities of 0.03-0.1):
    lower it to end imagined episodes there."""


REWARD_SOURCES = ("head", "task")
"""What :attr:`ImaginationCfg.reward_source` accepts."""


def imagination_active(cfg: ImaginationCfg, iteration: int) -> bool:
    """Whether imagined transitions join the PPO batch at ``iteration`` (enabled and past the warm-up)."""
    return bool(cfg.enabled) and iteration >= cfg.warmup_iterations


def imagined_batch_size(cfg: ImaginationCfg, real_transitions: int) -> int:
    """Imagined transitions to add to a PPO batch of ``real_transitions``."""
    return int(round(cfg.batch_ratio * real_transitions))


class DynamicsEnsemble(nn.Module):
    """K dynamics heads on a joint WAM's trunk: the WAM's own head (member 0) and ``size - 1`` extra ones.

    Args:
        wam: the joint WAM (not a submodule: its parameters stay the WAM's; this module holds the extra heads only).
        size: K >= 1.
    """

    def __init__(self, wam: JointWAM, size: int) -> None:
        super().__init__()
        if size < 1:
            raise ValueError(f"ensemble_size must be at least 1, got {size}")
        cfg, schema = wam.cfg, wam.schema
        self.extra = nn.ModuleList(
            DynamicsHead(cfg.trunk.hidden, schema, cfg, wam.space.delta_dim) for _ in range(size - 1)
        )
        self.to(next(wam.parameters()).device)
        object.__setattr__(self, "_wam", wam)

    @property
    def size(self) -> int:
        """K, the number of members."""
        return 1 + len(self.extra)

    def members(self) -> list[nn.Module]:
        """The heads, member 0 first (the WAM's own)."""
        return [self._wam.dynamics, *self.extra]

    def predict(self, features: torch.Tensor, actions: torch.Tensor) -> list[StepPrediction]:
        """Every member's prediction from trunk features (..., E) and physical actions (..., A)."""
        actions_norm = self._wam.normalizers.action(actions)
        return [head(features, actions_norm) for head in self.members()]


def ensemble_loss(wam: JointWAM, ensemble: DynamicsEnsemble, batch: Sequences, cfg: LossCfg):
    """One-step (teacher-forced) loss of the extra heads on every transition of ``batch`` (B, T, ·) that starts on a
    recorded step, from detached trunk features: the extra heads learn, the trunk does not move. Returns the summed
    loss (0 without extra heads) and the mean of each term over the heads."""
    if not len(ensemble.extra):
        return torch.zeros((), device=batch.states.device), {}
    states, instruction, actions = batch.states, batch.instruction, batch.actions
    with torch.no_grad():
        prev = previous_actions(actions[:, :-1], batch.action_before)
        features, _ = wam.encode(wam.tokens(states[:, :-1], instruction[:, :-1], prev))
    actions_norm = wam.normalizers.action(actions[:, :-1])
    mask = batch.step_mask[:, :-1]
    totals, parts = [], []
    for head in ensemble.extra:
        terms = step_losses(
            wam,
            head(features, actions_norm),
            states[:, :-1],
            states[:, 1:],
            batch.rewards[:, :-1],
            batch.terminated[:, :-1],
            batch.contacts[:, :-1],
            mask,
        )
        total = terms["dynamics_nll"] + cfg.reward_weight * terms["reward"]
        totals.append(total + cfg.termination_weight * terms["termination"])
        parts.append(terms)
    terms = {name: sum(part[name] for part in parts) / len(parts) for name in ("dynamics_nll", "reward", "termination")}
    return sum(totals), terms


def branch_points(start: Sequences) -> torch.Tensor:
    """``valid[b]``: window ``b`` (B, H, ·) may start an imagined rollout from its last row: every row is a recorded
    step (no final state ``s_T``, no padding) and no row before the last terminated (so the last state is not past an
    episode's end), (B,) bool."""
    steps = start.step_mask.bool().all(dim=1)
    return steps & (start.terminated[:, :-1] == 0).all(dim=1)


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    dones: torch.Tensor,
    last_values: torch.Tensor,
    gamma: float,
    lam: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalized advantage estimation over (T, N) steps, bootstrapping ``last_values`` (N,) after the last step.

    ``delta_t = r_t + gamma (1 - d_t) V_{t+1} - V_t``; ``A_t = delta_t + gamma lam (1 - d_t) A_{t+1}``;
    returns ``A_t + V_t``. Returns ``(returns, advantages)``, each (T, N).
    """
    advantages = torch.zeros_like(rewards)
    next_value, next_advantage = last_values, torch.zeros_like(last_values)
    for t in range(rewards.shape[0] - 1, -1, -1):
        alive = 1.0 - dones[t]
        # TD error: r_t + gamma * V(s_{t+1}) - V(s_t), no bootstrap past a termination
        delta = rewards[t] + gamma * alive * next_value - values[t]
        next_advantage = delta + gamma * lam * alive * next_advantage
        advantages[t] = next_advantage
        next_value = values[t]
    return advantages + values, advantages


@dataclass
class ImaginedRollout:
    """Imagined transitions, step-major like rsl-rl's rollout storage: (T, N, ·), T = horizon, N = imagined envs."""

    observations: dict[str, torch.Tensor]
    """The actor's observation groups at each step, flattened as rsl-rl's storage holds them: ``world_model``
    (T, N, S) physical state, ``instruction`` (T, N, I) (absent when I = 0), ``previous_action`` (T, N, A)."""
    hidden_states: torch.Tensor | None
    """The trunk's memory before each step (a GRU's hidden state), (T, layers, N, E); ``None`` for an MLP trunk."""
    actions: torch.Tensor
    """Sampled actions [physical units], (T, N, A)."""
    action_mean: torch.Tensor
    """Mean of the policy at each step, (T, N, A)."""
    action_std: torch.Tensor
    """Standard deviation of the policy at each step, (T, N, A)."""
    log_probs: torch.Tensor
    """Log-probability of the actions (summed over dimensions), (T, N)."""
    values: torch.Tensor
    """``V(h_k)``, (T, N)."""
    rewards: torch.Tensor
    """PPO rewards: model reward minus ``uncertainty_penalty`` x disagreement, (T, N)."""
    model_rewards: torch.Tensor
    """Rewards before the penalty [physical units], (T, N)."""
    disagreement: torch.Tensor
    """Ensemble disagreement ``u_k`` (members' std, normalized change units, mean over dimensions), (T, N)."""
    dones: torch.Tensor
    """1 where the termination head ended the episode at that step, (T, N)."""
    alive: torch.Tensor
    """True for real imagined transitions (the env had not terminated before), (T, N) bool."""
    returns: torch.Tensor
    """GAE returns, (T, N)."""
    advantages: torch.Tensor
    """GAE advantages, (T, N)."""
    members: torch.Tensor
    """Ensemble member of each imagined env, (N,) int64."""
    starts: torch.Tensor
    """Index of the start window (in the ``start`` batch) of each imagined env, (N,) int64."""

    @property
    def num_transitions(self) -> int:
        """Alive transitions (host sync)."""
        return int(self.alive.sum())

    def select(self, count: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Flat indices (into the (T * N) step-major order) of ``count`` alive transitions drawn without replacement
        (all of them if fewer are alive), (count,) int64."""
        alive = torch.nonzero(self.alive.flatten()).flatten()
        if count >= len(alive):
            return alive
        order = torch.randperm(len(alive), generator=generator, device="cpu").to(alive.device)
        return alive[order[:count]]

    def transitions(self, indices: torch.Tensor) -> dict[str, torch.Tensor | dict[str, torch.Tensor]]:
        """The transitions at flat ``indices`` (M,) (see :meth:`select`), each field (M, ·): ``observations`` (a dict
        of groups), ``actions``, ``action_mean``, ``action_std``, ``log_probs``, ``values``, ``returns``,
        ``advantages``, ``rewards``, ``dones``, and for a GRU trunk ``hidden_states`` (layers, M, E): the memory
        before each transition, so a recurrent actor re-evaluates it as a one-step trajectory from that memory."""

        def flat(value: torch.Tensor) -> torch.Tensor:
            return value.reshape(-1, *value.shape[2:])[indices]

        names = ("actions", "action_mean", "action_std", "log_probs", "values", "returns", "advantages")
        fields: dict = {name: flat(getattr(self, name)) for name in (*names, "rewards", "dones")}
        fields["observations"] = {group: flat(value) for group, value in self.observations.items()}
        if self.hidden_states is not None:  # (T, layers, N, E) -> (layers, T * N, E)
            hidden = self.hidden_states.transpose(0, 1)
            fields["hidden_states"] = hidden.reshape(hidden.shape[0], -1, hidden.shape[-1])[:, indices]
        return fields


@contextlib.contextmanager
def preserved_hidden_state(actor: nn.Module | None) -> Iterator[None]:
    """Save an actor's recurrent hidden state (``actor.hidden_state``) and put it back afterwards."""
    saved = getattr(actor, "hidden_state", None)
    saved = saved.clone() if isinstance(saved, torch.Tensor) else saved
    try:
        yield
    finally:
        if actor is not None and hasattr(actor, "hidden_state"):
            actor.hidden_state = saved


RewardFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
"""``reward_fn(states, actions, next_states, instruction, terminated) -> rewards``: the task's reward [physical units]
of a step from ``states`` (N, S) under ``actions`` (N, A) to ``next_states`` (N, S), with ``instruction`` (N, I),
``terminated`` (N,) 1 where the step ended the episode (terms such as Isaac Lab's ``is_alive``/``is_terminated``),
(N,)."""


@torch.no_grad()
def imagine(
    wam: JointWAM,
    ensemble: DynamicsEnsemble,
    start: Sequences,
    cfg: ImaginationCfg,
    gamma: float,
    lam: float,
    generator: torch.Generator | None = None,
    reward_fn: RewardFn | None = None,
    actor: nn.Module | None = None,
) -> ImaginedRollout:
    """Branched rollouts of the policy through the model from the last rows of real histories.

    Args:
        wam: the joint WAM (policy, value, trunk, normalizers).
        ensemble: its dynamics ensemble (``ensemble.size`` members; imagined env ``e`` uses member ``e mod K``).
        start: real histories (B, H, ·) in physical units; a window is used only if :func:`branch_points` allows it.
            Imagined env ``e`` starts from valid window ``e mod B_valid``.
        cfg: ``num_envs``, ``horizon``, ``uncertainty_penalty``, ``reward_source``.
        gamma, lam: PPO's discount and GAE lambda.
        generator: the random source of the actions (on the WAM's device), for reproducible tests.
        reward_fn: the task's reward on predicted states; required when ``cfg.reward_source == "task"``.
        actor: the rsl-rl actor whose recurrent ``hidden_state`` is saved and restored around the rollout.

    Raises:
        ValueError: no start window is a valid branch point; an unknown ``reward_source``; ``task`` without
            ``reward_fn``.
    """
    if cfg.reward_source not in REWARD_SOURCES:
        raise ValueError(f"imagination reward_source must be one of {REWARD_SOURCES}, got '{cfg.reward_source}'")
    if cfg.reward_source == "task" and reward_fn is None:
        raise ValueError("imagination reward_source 'task' needs the task's reward function (reward_fn)")
    valid = torch.nonzero(branch_points(start)).flatten()
    if not len(valid):
        raise ValueError(
            "no start window can branch an imagined rollout: every one has a final state or a termination before its"
            " last row"
        )
    with preserved_hidden_state(actor):
        return _rollout(wam, ensemble, start, valid, cfg, gamma, lam, generator, reward_fn)


def _rollout(wam, ensemble, start, valid, cfg, gamma, lam, generator, reward_fn) -> ImaginedRollout:
    device = start.states.device
    n, horizon, k = cfg.num_envs, cfg.horizon, ensemble.size
    starts = valid[torch.arange(n, device=device) % len(valid)]
    members = torch.arange(n, device=device) % k
    first = None if start.action_before is None else start.action_before[starts]
    prev = previous_actions(start.actions[starts], first)
    tokens = wam.tokens(start.states[starts], start.instruction[starts], prev)
    recurrent = wam.cfg.trunk.kind == "gru"
    before = wam.encode(tokens[:, :-1])[1] if tokens.shape[1] > 1 else None  # the memory before the branch step
    features, memory = wam.encode(tokens[:, -1:], before)
    if recurrent and before is None:
        before = torch.zeros_like(memory)
    feature, state, goal = features[:, 0], start.states[starts][:, -1], start.instruction[starts][:, -1]
    previous = prev[:, -1]
    alive = torch.ones(n, dtype=torch.bool, device=device)
    steps: dict[str, list[torch.Tensor]] = {}

    def record(**values: torch.Tensor) -> None:
        for name, value in values.items():
            steps.setdefault(name, []).append(value)

    n_reward = wam.normalizers.reward
    for _ in range(horizon):
        policy = wam.policy(feature)
        noise = torch.randn(policy.mean.shape, generator=generator, device=device)
        action = policy.mean + policy.stddev * noise
        predictions = ensemble.predict(feature, action)
        means = torch.stack([p.delta_mean for p in predictions])  # (K, N, D)
        disagreement = means.std(dim=0, unbiased=False).mean(-1) if k > 1 else torch.zeros(n, device=device)
        own = members[None, :, None].expand(1, n, means.shape[-1])
        next_state = wam.next_state(state, means.gather(0, own)[0])
        pick = torch.arange(n, device=device)
        termination = torch.stack([p.termination_logit for p in predictions])[members, pick][..., 0]
        done = (torch.sigmoid(termination) > cfg.done_threshold).float()
        if cfg.reward_source == "head":
            reward = n_reward.inverse(torch.stack([p.reward for p in predictions])[members, pick])[..., 0]
        else:
            reward = reward_fn(state, action, next_state, goal, done).reshape(n)
        record(
            states=state,
            instruction=goal,
            previous=previous,
            hidden=before if recurrent else None,
            actions=action,
            action_mean=policy.mean,
            action_std=policy.stddev,
            log_probs=policy.log_prob(action).sum(-1),
            values=wam.value(feature)[:, 0],
            model_rewards=reward,
            disagreement=disagreement,
            dones=done,
            alive=alive.clone(),
        )
        alive = alive & (done == 0)
        token = wam.tokens(next_state[:, None], goal[:, None], action[:, None])
        before = memory
        features, memory = wam.encode(token, memory)
        feature, state, previous = features[:, 0], next_state, action
    last_values = wam.value(feature)[:, 0]
    stacked = {name: torch.stack(values) for name, values in steps.items() if values[0] is not None}
    rewards = stacked["model_rewards"] - cfg.uncertainty_penalty * stacked["disagreement"]
    returns, advantages = gae(rewards, stacked["values"], stacked["dones"], last_values, gamma, lam)
    observations = {"world_model": stacked["states"], "previous_action": stacked["previous"]}
    if start.instruction.shape[-1]:
        observations["instruction"] = stacked["instruction"]
    return ImaginedRollout(
        observations=observations,
        hidden_states=stacked.get("hidden"),
        actions=stacked["actions"],
        action_mean=stacked["action_mean"],
        action_std=stacked["action_std"],
        log_probs=stacked["log_probs"],
        values=stacked["values"],
        rewards=rewards,
        model_rewards=stacked["model_rewards"],
        disagreement=stacked["disagreement"],
        dones=stacked["dones"],
        alive=stacked["alive"],
        returns=returns,
        advantages=advantages,
        members=members,
        starts=starts,
    )
