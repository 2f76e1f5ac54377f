"""Losses of the world model, the joint WAM and the cascaded WAM on a batch of windows.

World-model loss over a window of H history and F forecast steps:

- history: one-step teacher-forced predictions at steps ``0..H-2`` (true states in, target ``s_{t+1} - s_t``);
- forecast: an autoregressive rollout from ``s_{H-1}``: the model is fed its own predictions ``s^``, and each step's
  target is the change that would land on the truth, from ``s^_t`` to ``s_{t+1}`` (gradients flow through ``s^``, so
  the model learns to correct its own drift). Changes are :class:`~wam_isaac.models.state_space.StateSpace` changes
  (rotation vectors for quaternions) normalized by one scale per state term, so the drift of a nearly constant
  dimension weighs as much as the same drift, in the same unit, of the other dimensions of its term. With
  ``teacher_forcing=True`` the forecast is fed the true states instead.

Each predicted step costs the Gaussian negative log-likelihood of the normalized delta (mean over dimensions), each
element weighted by its predicted variance to the power ``dynamics_beta`` (held constant: beta-NLL, Seitzer et al.
2022), plus weighted auxiliary terms: reward (MSE, normalized), termination and contacts (binary cross-entropy). The
plain NLL divides the mean's gradient by the variance, so a dimension the model finds hard early on (large predicted
std: the cube's yaw, steered by where the tip meets a face) learns its mean slowly while the easy ones sharpen.

Episode ends: a window may reach its episode's final row ``s_T`` (:attr:`Sequences.is_final`; padded windows repeat
it after the end), so the last transition ``s_{T-1} -> s_T`` is predicted with its ``terminated`` flag (the
termination head's positive examples). Every term is a mean over the predicted transitions that start on a recorded
step (:attr:`Sequences.step_mask`); behaviour cloning and the value regression are means over recorded steps (a final
row has no action); value targets bootstrap at final rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from ..models.wam import CascadedWAM, JointWAM
from ..models.world_model import EnsembleWorldModel, StepPrediction, WorldModel, previous_actions
from .action_targets import action_targets
from .sequences import Sequences


@dataclass
class LossCfg:
    """Weights and options of the training objective."""

    teacher_forcing: bool = False
    """Feed the true states during the forecast (pure teacher forcing) instead of the model's own predictions."""
    dynamics_beta: float = 0.5
    """beta of the dynamics head's beta-NLL, in [0, 1]: each element's Gaussian NLL is weighted by
    ``sigma^(2 beta)`` (no gradient through the weight), so the mean's gradient is ``(mu - x) / sigma^(2 - 2 beta)``.
    0 is the plain NLL (the mean's gradient divided by the variance), 1 gives the mean the gradient of the squared
    error. The logged ``dynamics_nll`` is the plain NLL whatever beta; ``dynamics_loss`` is the weighted one. A saved
    config (or WamPPO checkpoint) without it is a run from before beta-NLL and loads with 0.0
    (:data:`~wam_isaac.training.config.PLAIN_NLL_BETA`)."""
    reward_weight: float = 0.1
    """Weight of the reward head's MSE."""
    termination_weight: float = 0.1
    """Weight of the termination head's BCE."""
    contact_weight: float = 0.1
    """Weight of the contact head's BCE."""
    action_weight: float = 1.0
    """Weight of behaviour cloning (the action head's Gaussian NLL) against the world-model loss. Its targets are the
    batch's :func:`~wam_isaac.training.action_targets.action_targets` (the executed actions, or the expert's labels
    with ``train.action_target=expert``)."""
    value_weight: float = 0.1
    """Joint WAM: weight of the value head's n-step TD loss."""
    gamma: float = 0.99
    """Joint WAM: discount of the value targets."""


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-element Gaussian negative log-likelihood: ``0.5 ((x - mu) / sigma)^2 + log sigma + 0.5 log(2 pi)``."""
    return 0.5 * ((target - mean) * torch.exp(-log_std)).square() + log_std + 0.5 * math.log(2.0 * math.pi)


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` (*M, ...) over the entries of ``mask`` (*M) that are 1 (and over the trailing dims)."""
    per_step = values.reshape(*mask.shape, -1).mean(-1)
    return (per_step * mask).sum() / mask.sum().clamp_min(1.0)


def beta_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-element beta-NLL: :func:`gaussian_nll` times ``sigma^(2 beta)``, the weight held constant (detached)."""
    nll = gaussian_nll(mean, log_std, target)
    return nll if beta == 0.0 else nll * torch.exp(2.0 * beta * log_std).detach()


def step_losses(
    model: WorldModel,
    prediction: StepPrediction,
    start,
    target_state,
    reward,
    terminated,
    contacts,
    mask,
    beta: float = 0.0,
):
    """Loss terms of predictions (B, n, ·) that started from ``start`` and should land on ``target_state``, averaged
    over the transitions where ``mask`` (B, n) is 1 (those that start on a recorded step); ``beta``: see
    :attr:`LossCfg.dynamics_beta`."""
    n = model.normalizers
    target_delta = model.delta_target(start, target_state)
    reward_error = prediction.reward[..., 0] - n.reward(reward[..., None])[..., 0]
    termination = F.binary_cross_entropy_with_logits(prediction.termination_logit[..., 0], terminated, reduction="none")
    mean, log_std = prediction.delta_mean, prediction.delta_log_std
    terms = {
        "dynamics_nll": masked_mean(gaussian_nll(mean, log_std, target_delta), mask),
        "dynamics_loss": masked_mean(beta_nll(mean, log_std, target_delta, beta), mask),
        "dynamics_mse": masked_mean((prediction.delta_mean - target_delta).square(), mask),
        "reward": masked_mean(reward_error.square(), mask),
        "termination": masked_mean(termination, mask),
    }
    if contacts.shape[-1]:
        bce = F.binary_cross_entropy_with_logits(prediction.contact_logits, contacts, reduction="none")
        terms["contact"] = masked_mean(bce, mask)
    return terms


def world_model_loss(model: WorldModel, batch: Sequences, history: int, cfg: LossCfg):
    """Total world-model loss and its named terms (detached floats) for one model."""
    parts = []
    mask = batch.step_mask
    if history > 1:  # one-step teacher-forced predictions inside the history
        _, prediction, _ = model.teacher_forced(
            batch.states[:, : history - 1],
            batch.instruction[:, : history - 1],
            batch.actions[:, : history - 1],
            before=batch.action_before,
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
                mask[:, s],
                cfg.dynamics_beta,
            )
        )
    if batch.states.shape[1] > history:
        teacher = batch.states if cfg.teacher_forcing else None
        rollout = model.rollout(
            batch.states, batch.instruction, batch.actions, history, teacher_states=teacher, before=batch.action_before
        )
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
                mask[:, s],
                cfg.dynamics_beta,
            )
        )
    terms = {name: sum(part[name] for part in parts) / len(parts) for name in parts[0]}
    total = (
        terms["dynamics_loss"]
        + cfg.reward_weight * terms["reward"]
        + cfg.termination_weight * terms["termination"]
        + cfg.contact_weight * terms.get("contact", 0.0)
    )
    return total, terms


def action_nll(
    distribution: torch.distributions.Normal,
    actions: torch.Tensor,
    scale: torch.Tensor,
    mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Behaviour-cloning loss: Gaussian NLL of the dataset's actions in normalized units (mean over dimensions, and
    over the entries where ``mask`` (the leading dims of ``actions``) is 1, if given)."""
    nll = -(distribution.log_prob(actions) + torch.log(scale))
    return nll.mean() if mask is None else masked_mean(nll, mask)


def joint_loss(model: JointWAM, batch: Sequences, history: int, cfg: LossCfg):
    """World-model loss + behaviour cloning at every recorded step + n-step value regression, on one shared trunk."""
    total, terms = world_model_loss(model, batch, history, cfg)
    prev = previous_actions(batch.actions, batch.action_before)
    features, _ = model.encode(model.tokens(batch.states, batch.instruction, prev))
    policy = model.policy(features)
    mask, targets = batch.step_mask, action_targets(batch)
    terms["action_nll"] = action_nll(policy, targets, model.normalizers.action.std, mask)
    terms["action_mse"] = masked_mean((policy.mean - targets).square(), mask)
    values = model.value(features)[..., 0]
    targets = value_targets(model, batch, values.detach(), cfg.gamma)
    terms["value"] = masked_mean((values - targets).square(), mask)
    total = total + cfg.action_weight * terms["action_nll"] + cfg.value_weight * terms["value"]
    return total, terms


def value_targets(model: JointWAM, batch: Sequences, values: torch.Tensor, gamma: float) -> torch.Tensor:
    """n-step returns to the window's end, in units of reward / the reward normalizer's std, (B, T).

    ``G_t = r_t / sigma + gamma (1 - d_t) G_{t+1}`` with ``d_t`` = terminated at ``t``; ``G = V`` (the bootstrap) on
    a final row (``V(s_T)``: after a time-out it is what follows ``T - 1``; a termination at ``T - 1`` cuts it) and at
    the window's last row, unless the episode terminated there (``G = r / sigma``: a window ending on its last step
    when the table has no final rows).

    The rewards are scaled, not shifted: with ``(r - mu) / sigma`` the target of a step ``k`` steps before a termination
    would carry ``-mu / sigma * (1 - gamma^k) / (1 - gamma)``, a bias that depends on the time left, not on the state.
    """
    rewards = batch.rewards / model.normalizers.reward.std
    final = torch.zeros_like(rewards, dtype=torch.bool) if batch.is_final is None else batch.is_final > 0
    last_terminated = batch.terminated[:, -1]
    target = values[:, -1] * (1.0 - last_terminated) + rewards[:, -1] * last_terminated
    target = torch.where(final[:, -1], values[:, -1], target)
    targets = [target]
    for t in range(batch.rewards.shape[1] - 2, -1, -1):
        # G_t = r_t + gamma * G_{t+1}, no bootstrap past a termination; V(s_T) on a final row
        target = rewards[:, t] + gamma * target * (1.0 - batch.terminated[:, t])
        target = torch.where(final[:, t], values[:, t], target)
        targets.append(target)
    return torch.stack(targets[::-1], dim=1)


def cascaded_loss(model: CascadedWAM, batch: Sequences, history: int, cfg: LossCfg):
    """The world model's own loss + behaviour cloning of the policy at the last history step."""
    total, terms = world_model_loss(model.world_model, batch, history, cfg)
    prev = previous_actions(batch.actions, batch.action_before)
    h = slice(0, history)
    distribution = model.policy_at_last(batch.states[:, h], batch.instruction[:, h], prev[:, h])
    target = action_targets(batch)[:, history - 1]
    mask = batch.step_mask[:, history - 1]  # (B,): a window of H rows may end on a final row (no action)
    terms["action_nll"] = action_nll(distribution, target, model.normalizers.action.std, mask)
    terms["action_mse"] = masked_mean((distribution.mean - target).square(), mask)
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
