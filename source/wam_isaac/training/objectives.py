"""Losses of the world model, the joint WAM and the cascaded WAM on a batch of windows.

World-model loss over a window of H history and F forecast steps:

- history: one-step teacher-forced predictions at steps ``0..H-2`` (true states in, target ``s_{t+1} - s_t``);
- forecast: an autoregressive rollout from ``s_{H-1}``: the model is fed its own predictions ``s^``, and each step's
  target is the change that would land on the truth, from ``s^_t`` to ``s_{t+1}`` (gradients flow through ``s^``, so
  the model learns to correct its own drift). Changes are :class:`~wam_isaac.models.state_space.StateSpace` changes
  (rotation vectors for quaternions) normalized by one scale per state term, so the drift of a nearly constant
  dimension weighs as much as the same drift, in the same unit, of the other dimensions of its term. With
  ``teacher_forcing=True`` the forecast is fed the true states instead.

Each predicted step costs the Gaussian negative log-likelihood of the normalized delta (mean over dimensions), plus
weighted auxiliary terms: reward (MSE, normalized), termination and contacts (binary cross-entropy).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..models.wam import CascadedWAM, JointWAM
from ..models.world_model import EnsembleWorldModel, StepPrediction, WorldModel, previous_actions
from .sequences import Sequences


@dataclass
class LossCfg:
    """Weights and options of the training objective."""

    teacher_forcing: bool = False
    """Feed the true states during the forecast (pure teacher forcing) instead of the model's own predictions."""
    reward_weight: float = 0.1
    """Weight of the reward head's MSE."""
    termination_weight: float = 0.1
    """Weight of the termination head's BCE."""
    contact_weight: float = 0.1
    """Weight of the contact head's BCE."""
    action_weight: float = 1.0
    """Weight of behaviour cloning (the action head's Gaussian NLL) against the world-model loss."""
    value_weight: float = 0.1
    """Joint WAM: weight of the value head's n-step TD loss."""
    gamma: float = 0.99
    """Joint WAM: discount of the value targets."""


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood: ``0.5 ((x - mu) / sigma)^2 + log sigma + 0.5 log(2 pi)``."""
    return 0.5 * ((target - mean) * torch.exp(-log_std)).square() + log_std + 0.5 * math.log(2.0 * math.pi)


def step_losses(model: WorldModel, prediction: StepPrediction, start, target_state, reward, terminated, contacts):
    """Loss terms of predictions (..., ·) that started from ``start`` and should land on ``target_state``."""
    n = model.normalizers
    target_delta = model.delta_target(start, target_state)
    terms = {
        "dynamics_nll": gaussian_nll(prediction.delta_mean, prediction.delta_log_std, target_delta).mean(),
        "dynamics_mse": (prediction.delta_mean - target_delta).square().mean(),
        "reward": (prediction.reward[..., 0] - n.reward(reward[..., None])[..., 0]).square().mean(),
        "termination": F.binary_cross_entropy_with_logits(prediction.termination_logit[..., 0], terminated),
    }
    if contacts.shape[-1]:
        terms["contact"] = F.binary_cross_entropy_with_logits(prediction.contact_logits, contacts)
    return terms


def world_model_loss(model: WorldModel, batch: Sequences, history: int, cfg: LossCfg):
    """Total world-model loss and its named terms (detached floats) for one model."""
    parts = []
    if history > 1:  # one-step teacher-forced predictions inside the history
        _, prediction, _ = model.teacher_forced(
            batch.states[:, : history - 1], batch.instruction[:, : history - 1], batch.actions[:, : history - 1]
        )
        s = slice(0, history - 1)
        parts.append(
            step_losses(
                model,
                prediction,
                batch.states[:, s],
                batch.states[:, 1:history],
                batch.rewards[:, s],
                batch.terminated[:, s],
                batch.contacts[:, s],
            )
        )
    if batch.states.shape[1] > history:
        teacher = batch.states if cfg.teacher_forcing else None
        rollout = model.rollout(batch.states, batch.instruction, batch.actions, history, teacher_states=teacher)
        s = slice(history - 1, batch.states.shape[1] - 1)
        parts.append(
            step_losses(
                model,
                rollout.predictions,
                rollout.inputs,
                batch.states[:, history:],
                batch.rewards[:, s],
                batch.terminated[:, s],
                batch.contacts[:, s],
            )
        )
    terms = {name: sum(part[name] for part in parts) / len(parts) for name in parts[0]}
    total = (
        terms["dynamics_nll"]
        + cfg.reward_weight * terms["reward"]
        + cfg.termination_weight * terms["termination"]
        + cfg.contact_weight * terms.get("contact", 0.0)
    )
    return total, terms


def action_nll(distribution: torch.distributions.Normal, actions: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """Behaviour-cloning loss: Gaussian NLL of the dataset's actions in normalized units (mean over dimensions)."""
    return -(distribution.log_prob(actions) + torch.log(scale)).mean()


def joint_loss(model: JointWAM, batch: Sequences, history: int, cfg: LossCfg):
    """World-model loss + behaviour cloning at every step + n-step value regression, on one shared trunk."""
    total, terms = world_model_loss(model, batch, history, cfg)
    features, _ = model.encode(model.tokens(batch.states, batch.instruction, previous_actions(batch.actions)))
    policy = model.policy(features)
    terms["action_nll"] = action_nll(policy, batch.actions, model.normalizers.action.std)
    terms["action_mse"] = (policy.mean - batch.actions).square().mean()
    values = model.value(features)[..., 0]
    terms["value"] = (values - value_targets(model, batch, values.detach(), cfg.gamma)).square().mean()
    total = total + cfg.action_weight * terms["action_nll"] + cfg.value_weight * terms["value"]
    return total, terms


def value_targets(model: JointWAM, batch: Sequences, values: torch.Tensor, gamma: float) -> torch.Tensor:
    """n-step returns to the window's end: ``sum_i gamma^i r_{t+i} + gamma^n V(s_{T-1})`` (no bootstrap past a
    termination; a window ending where its episode terminated ends on ``r_{T-1}``, not ``V(s_{T-1})``), in
    normalized-reward units, (B, T)."""
    rewards = model.normalizers.reward(batch.rewards[..., None])[..., 0]
    last_terminated = batch.terminated[:, -1]
    target = values[:, -1] * (1.0 - last_terminated) + rewards[:, -1] * last_terminated
    targets = [target]
    for t in range(batch.rewards.shape[1] - 2, -1, -1):
        target = rewards[:, t] + gamma * target * (1.0 - batch.terminated[:, t])
        targets.append(target)
    return torch.stack(targets[::-1], dim=1)


def cascaded_loss(model: CascadedWAM, batch: Sequences, history: int, cfg: LossCfg):
    """The world model's own loss + behaviour cloning of the policy at the last history step."""
    total, terms = world_model_loss(model.world_model, batch, history, cfg)
    prev = previous_actions(batch.actions)
    h = slice(0, history)
    distribution = model.policy_at_last(batch.states[:, h], batch.instruction[:, h], prev[:, h])
    target = batch.actions[:, history - 1]
    terms["action_nll"] = action_nll(distribution, target, model.normalizers.action.std)
    terms["action_mse"] = (distribution.mean - target).square().mean()
    return total + cfg.action_weight * terms["action_nll"], terms


def model_loss(model, batch: Sequences, history: int, cfg: LossCfg):
    """The loss of any model kind, and its named terms."""
    if isinstance(model, JointWAM):
        return joint_loss(model, batch, history, cfg)
    if isinstance(model, CascadedWAM):
        return cascaded_loss(model, batch, history, cfg)
    if isinstance(model, EnsembleWorldModel):
        results = [world_model_loss(member, batch, history, cfg) for member in model.members]
        terms = {name: sum(r[1][name] for r in results) / len(results) for name in results[0][1]}
        return sum(r[0] for r in results), terms
    return world_model_loss(model, batch, history, cfg)
