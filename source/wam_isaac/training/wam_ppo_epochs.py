"""PPO's epochs on a joint WAM's shared trunk (a mixin of :class:`~wam_isaac.training.wam_ppo.WamPPO`).

rsl-rl's PPO update (same minibatches, losses and learning-rate schedule) with every parameter stepped and clipped
once (the actor and the shared critic hold the same trunk), the actor frozen during the critic warm-up, imagined
transitions joining each minibatch, and an optional anchor to the pretrained policy: ``anchor_weight`` x
KL(pi_pretrained || pi) on each minibatch's observations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from .wam_ppo_imagination import ImaginedSamples


class PpoEpochs:
    """WamPPO's PPO epochs, learning-rate schedule and optimizer step (uses PPO's and WamPPO's attributes)."""

    @property
    def in_warmup(self) -> bool:
        return self.iteration < self.critic_warmup_iterations

    @property
    def anchor_weight(self) -> float:
        """Weight of the anchor term this update: ``anchor_kl_weight`` from the end of the critic warm-up, decayed
        linearly to 0 over ``anchor_decay_iterations`` updates (0: never decayed); 0 without an anchor."""
        if self.anchor is None:
            return 0.0
        if self.anchor_decay_iterations <= 0:
            return self.anchor_kl_weight
        done = max(0, self.iteration - self.critic_warmup_iterations)
        return self.anchor_kl_weight * max(0.0, 1.0 - done / self.anchor_decay_iterations)

    def anchor_kl(self, batch) -> torch.Tensor:
        """KL(pi_anchor || pi) summed over action dimensions, averaged over the minibatch's (unpadded) samples; the
        current policy's distribution is the one of the last actor forward (on ``batch``, in :meth:`ppo_losses`).
        A GRU anchor starts each trajectory from the rollout's stored memory (the current policy's), as the actor
        does: the anchor's own memory is not carried through rollouts."""
        with torch.no_grad():
            self.anchor(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[0])
            anchor_params = self.anchor.output_distribution_params
        return self.actor.get_kl_divergence(anchor_params, self.actor.output_distribution_params).mean()

    def ppo_epochs(self, imagined: ImaginedSamples | None = None) -> dict[str, float]:
        """rsl-rl's PPO update (same minibatches, losses and learning-rate schedule) with every parameter stepped
        and clipped once; during the critic warm-up the loss is the value loss alone and the policy's parameters
        keep their values. ``imagined`` transitions join each minibatch (their share of the loss is their share of
        the samples)."""
        mean_value_loss = mean_surrogate_loss = mean_entropy = mean_anchor_kl = 0.0
        warmup = self.in_warmup
        anchor_weight = 0.0 if warmup else self.anchor_weight
        if self.actor.is_recurrent or self.critic.is_recurrent:
            generator = self.storage.recurrent_mini_batch_generator(self.num_mini_batches, self.num_learning_epochs)
        else:
            generator = self.storage.mini_batch_generator(self.num_mini_batches, self.num_learning_epochs)
        chunks = imagined.minibatches(self.num_mini_batches, self.num_learning_epochs) if imagined else None
        real = self.storage.num_envs * self.storage.num_transitions_per_env / self.num_mini_batches
        for batch in generator:
            if self.normalize_advantage_per_mini_batch:
                with torch.no_grad():
                    batch.advantages = (batch.advantages - batch.advantages.mean()) / (batch.advantages.std() + 1e-8)
            with torch.amp.autocast(
                device_type=torch.device(self.device).type, enabled=self.use_mixed_precision, dtype=torch.bfloat16
            ):
                surrogate_loss, value_loss, entropy = self.ppo_losses(batch, adapt_lr=not warmup)
                anchor_kl = self.anchor_kl(batch) if self.anchor is not None else None
                if chunks is not None:
                    index = next(chunks)
                    share = len(index) / (len(index) + real)
                    imagined_surrogate, imagined_value = self.imagined_losses(imagined, index)
                    surrogate_loss = (1 - share) * surrogate_loss + share * imagined_surrogate
                    value_loss = (1 - share) * value_loss + share * imagined_value
            if warmup:
                loss = self.value_loss_coef * value_loss
            else:
                loss = surrogate_loss + self.value_loss_coef * value_loss - self.entropy_coef * entropy.mean()
                if anchor_weight > 0.0:
                    loss = loss + anchor_weight * anchor_kl
            self.optimizer.zero_grad()
            loss.backward()
            self.step_optimizer(frozen=self.frozen_in_warmup if warmup else ())
            mean_value_loss += value_loss.item()
            mean_surrogate_loss += surrogate_loss.item()
            mean_entropy += entropy.mean().item()
            if anchor_kl is not None:
                mean_anchor_kl += anchor_kl.item()
        obs = self.storage.observations.flatten(0, 1)
        self.actor.update_normalization(obs)
        self.critic.update_normalization(obs)
        updates = self.num_learning_epochs * self.num_mini_batches
        self.storage.clear()
        losses = {
            "value": mean_value_loss / updates,
            "surrogate": mean_surrogate_loss / updates,
            "entropy": mean_entropy / updates,
        }
        if self.anchor is not None:
            losses.update(anchor_kl=mean_anchor_kl / updates, anchor_weight=anchor_weight)
        return losses

    def ppo_losses(self, batch, adapt_lr: bool):
        """PPO's clipped surrogate loss, value loss and entropy (per sample) on one minibatch; adapts the learning
        rate to the minibatch's KL first (rsl-rl's order)."""
        self.actor(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[0], stochastic_output=True)
        actions_log_prob = self.actor.get_output_log_prob(batch.actions)
        values = self.critic(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[1])
        if self.desired_kl is not None and self.schedule == "adaptive" and adapt_lr:
            self.adapt_learning_rate(batch.old_distribution_params, self.actor.output_distribution_params)
        # surrogate: max(-A * r, -A * clip(r, 1 - eps, 1 + eps)) with r = pi(a|s) / pi_old(a|s)
        advantages = torch.squeeze(batch.advantages)
        ratio = torch.exp(actions_log_prob - torch.squeeze(batch.old_actions_log_prob))
        clipped = torch.clamp(ratio, 1.0 - self.clip_param, 1.0 + self.clip_param)
        surrogate_loss = torch.max(-advantages * ratio, -advantages * clipped).mean()
        if self.use_clipped_value_loss:
            value_clipped = batch.values + (values - batch.values).clamp(-self.clip_param, self.clip_param)
            value_loss = torch.max((values - batch.returns).pow(2), (value_clipped - batch.returns).pow(2)).mean()
        else:
            value_loss = (batch.returns - values).pow(2).mean()
        return surrogate_loss, value_loss, self.actor.output_entropy

    def adapt_learning_rate(self, old_params, new_params) -> None:
        """PPO's adaptive schedule: lr / 1.5 when KL > 2 desired, x 1.5 when KL < desired / 2 (within 1e-5 and
        :attr:`max_learning_rate`, rsl-rl's 1e-2 unless a fine-tune lowers it)."""
        with torch.inference_mode():
            kl_mean = torch.mean(self.actor.get_kl_divergence(old_params, new_params))
            if self.is_multi_gpu:
                torch.distributed.all_reduce(kl_mean, op=torch.distributed.ReduceOp.SUM)
                kl_mean /= self.gpu_world_size
            if self.gpu_global_rank == 0:
                if kl_mean > self.desired_kl * 2.0:
                    self.learning_rate = max(1e-5, self.learning_rate / 1.5)
                elif self.desired_kl / 2.0 > kl_mean > 0.0:
                    self.learning_rate = min(self.max_learning_rate, self.learning_rate * 1.5)
            if self.is_multi_gpu:
                lr_tensor = torch.tensor(self.learning_rate, device=self.device)
                torch.distributed.broadcast(lr_tensor, src=0)
                self.learning_rate = lr_tensor.item()
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate

    def step_optimizer(self, frozen=(), clip_groups=None) -> None:
        """Reduce the gradients across GPUs, drop those of ``frozen`` parameters, clip each parameter once (the
        actor's together, then the critic's own, as PPO clips per model) and step."""
        if self.is_multi_gpu:
            self.reduce_parameters()
        for parameter in frozen:
            parameter.grad = None
        for group in clip_groups or (list(self.actor.parameters()), self.critic_only):
            if group:
                nn.utils.clip_grad_norm_(group, self.max_grad_norm)
        self.optimizer.step()
