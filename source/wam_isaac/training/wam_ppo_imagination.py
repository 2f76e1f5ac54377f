"""Imagined transitions in WamPPO's batch (a mixin of :class:`~wam_isaac.training.wam_ppo.WamPPO`).

Branched rollouts of the current policy through the learned model from replay histories
(:func:`~wam_isaac.training.imagination.imagine`), the selection that joins the PPO batch, and PPO's losses on it.
"""

from __future__ import annotations

import torch

from ..models.rl_adapters import INSTRUCTION_GROUP, STATE_GROUP
from .imagination import ImaginedRollout, imagine, imagined_batch_size
from .sequences import Sequences


class ImaginationSteps:
    """WamPPO's imagination: the rollout of an update and PPO's losses on it."""

    def imagine(self) -> ImaginedSamples | None:
        """Branched rollouts of the current policy (the one that collected the rollout) from replay histories of the
        training envs; the transitions that join this update's PPO batch."""
        cfg, history = self.imagination, self.wm.get("history", 8)
        windows = self.replay.sample(cfg.num_envs, history, self.train_envs)
        if windows is None:
            return None
        start = Sequences(  # the history's recorded steps, without the next state that closes the window
            states=windows.states[:, :-1],
            instruction=windows.instruction[:, :-1],
            actions=windows.actions[:, :-1],
            rewards=windows.rewards[:, :-1],
            terminated=windows.terminated[:, :-1],
            contacts=windows.contacts[:, :-1],
        )
        rollout = imagine(self.wam, self.ensemble, start, cfg, self.gamma, self.lam, actor=self.actor)
        real = self.storage.num_envs * self.storage.num_transitions_per_env
        return ImaginedSamples(rollout, rollout.select(imagined_batch_size(cfg, real)))

    def imagined_losses(self, imagined: ImaginedSamples, index: torch.Tensor):
        """PPO's surrogate and value losses on imagined transitions ``index`` (into :attr:`ImaginedSamples.index`),
        with the log-probabilities, values, returns and advantages recorded when they were imagined."""
        rollout, flat = imagined.rollout, imagined.index[index]
        wam = self.wam

        def pick(tensor: torch.Tensor) -> torch.Tensor:
            return tensor.flatten(0, 1)[flat]

        observations = rollout.observations
        instruction = observations.get(INSTRUCTION_GROUP, observations[STATE_GROUP][..., :0])
        tokens = wam.tokens(pick(observations[STATE_GROUP]), pick(instruction), pick(observations["previous_action"]))
        if rollout.hidden_states is not None:  # (T, layers, N, E) -> (layers, B, E)
            hidden = pick(rollout.hidden_states.permute(0, 2, 1, 3)).transpose(0, 1).contiguous()
            features = wam.encode(tokens[:, None], hidden)[0][:, 0]
        else:
            features = wam.encode(tokens)[0]
        policy, values = wam.policy(features), wam.value(features)[:, 0]
        advantages = imagined.advantages[index]
        ratio = torch.exp(policy.log_prob(pick(rollout.actions)).sum(-1) - pick(rollout.log_probs))
        clipped = torch.clamp(ratio, 1.0 - self.clip_param, 1.0 + self.clip_param)
        surrogate = torch.max(-advantages * ratio, -advantages * clipped).mean()
        old_values, returns = pick(rollout.values), pick(rollout.returns)
        if self.use_clipped_value_loss:
            value_clipped = old_values + (values - old_values).clamp(-self.clip_param, self.clip_param)
            value = torch.max((values - returns).pow(2), (value_clipped - returns).pow(2)).mean()
        else:
            value = (returns - values).pow(2).mean()
        return surrogate, value


class ImaginedSamples:
    """The imagined transitions of one update: a rollout, the transitions selected for the PPO batch, and their
    advantages normalized over the selection (as rsl-rl normalizes the real ones over the rollout)."""

    def __init__(self, rollout: ImaginedRollout, index: torch.Tensor) -> None:
        self.rollout, self.index = rollout, index
        """Flat (step-major) indices of the selected alive transitions, (M,)."""
        advantages = rollout.advantages.flatten()[index]
        self.advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

    def minibatches(self, count: int, epochs: int):
        """Positions into :attr:`index`: each epoch a fresh permutation cut into exactly ``count`` chunks (the whole
        permutation each time if it has fewer than ``count`` transitions)."""
        for _ in range(epochs):
            order = torch.randperm(len(self.index), device=self.index.device)
            yield from order.tensor_split(count) if len(order) >= count else [order] * count


def imagined_figures(imagined: ImaginedSamples) -> dict[str, float]:
    """What the log says about the imagined batch: its size, mean model reward and ensemble disagreement."""
    rollout, alive = imagined.rollout, imagined.rollout.alive
    return {
        "imagination_transitions": float(len(imagined.index)),
        "imagination_reward": float(rollout.model_rewards[alive].mean()),
        "imagination_disagreement": float(rollout.disagreement[alive].mean()),
    }
