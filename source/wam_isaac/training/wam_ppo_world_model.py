"""World-model steps on WamPPO's replay (a mixin of :class:`~wam_isaac.training.wam_ppo.WamPPO`).

After PPO's epochs: gradient steps of the multi-step world-model loss on replay windows of the training envs, the
policy's KL across them, the held-out envs' k-step prediction error, and a run from scratch's normalizer fit.
"""

from __future__ import annotations

import torch

from .imagination import ensemble_loss
from .metrics import error_magnitudes
from .objectives import world_model_loss
from .sequences import Sequences


class WorldModelSteps:
    """WamPPO's world-model steps, held-out prediction errors and normalizer fit."""

    @property
    def window_transitions(self) -> int:
        """Transitions per training window: H + F states = H + F - 1 transitions, then the next state."""
        return self.wm.get("history", 8) + self.wm.get("forecast", 8) - 1

    def world_model_steps(self) -> dict[str, float]:
        """``world_model.steps`` gradient steps of ``world_model_weight`` x the world-model loss on replay windows of
        the training envs; the terms' means and the policy's KL across the steps (on a fixed batch of them)."""
        steps, batch_size, history = self.wm.get("steps", 4), self.wm.get("batch_size", 64), self.wm.get("history", 8)
        probe = self.replay.sample(batch_size, self.window_transitions, self.train_envs)
        if probe is None or steps <= 0:
            return {}
        before = self.policy_on(probe)
        sums: dict[str, torch.Tensor] = {}
        frozen = self.frozen_in_warmup if self.in_warmup else ()
        for _ in range(steps):
            batch = self.replay.sample(batch_size, self.window_transitions, self.train_envs)
            loss, terms = world_model_loss(self.wam, batch, history, self.loss_cfg)
            if self.ensemble is not None and len(self.ensemble.extra):
                extra, extra_terms = ensemble_loss(self.wam, self.ensemble, batch, self.loss_cfg)
                loss = loss + extra
                terms = {**terms, **{f"ensemble_{name}": value for name, value in extra_terms.items()}}
            self.optimizer.zero_grad()
            (self.world_model_weight * loss).backward()
            self.step_optimizer(frozen=frozen, clip_groups=(self.world_model_params,))
            for name, value in {"total": loss, **terms}.items():
                sums[name] = sums.get(name, 0.0) + value.detach()
        after = self.policy_on(probe)
        kl = torch.distributions.kl_divergence(before, after).sum(-1).mean()
        means = {f"world_model_{name}": float(value) / steps for name, value in sums.items()}
        return {**means, "world_model_kl": float(kl)}

    @torch.no_grad()
    def policy_on(self, batch: Sequences) -> torch.distributions.Normal:
        """The policy at every step of true windows (trunk from zero memory at the window's first step)."""
        return self.actor.model.act_sequence(batch.states, batch.instruction, batch.actions, batch.action_before)

    @torch.no_grad()
    def heldout_errors(self) -> dict[str, float]:
        """k-step prediction error of the held-out envs' most recent windows: per state term in physical units
        (``WorldModel/error@k/<term>``, RMS over windows), and the mean over terms of model / copy-last
        (``WorldModel/ratio@k``)."""
        history, k = self.wm.get("history", 8), self.wm.get("eval_horizon", 8)
        batch = self.replay.latest(self.wm.get("eval_windows", 128), history + k - 1, ~self.train_envs)
        if batch is None:
            return {}
        was_training = self.wam.training
        self.wam.eval()
        predicted = self.wam.rollout(
            batch.states, batch.instruction, batch.actions, history, before=batch.action_before
        ).states[:, -1]
        self.wam.train(was_training)
        true, last = batch.states[:, -1], batch.states[:, history - 1]
        schema = self.wam.schema
        model = error_magnitudes(predicted, true, schema)
        copy_last = error_magnitudes(last, true, schema)
        figures, ratios = {}, []
        for name, error in model.items():
            rms, baseline = error.square().mean().sqrt(), copy_last[name].square().mean().sqrt()
            figures[f"WorldModel/error@{k}/{name}"] = float(rms)
            ratios.append(float(rms / baseline.clamp_min(1e-9)))
        figures[f"WorldModel/ratio@{k}"] = sum(ratios) / len(ratios)
        figures["WorldModel/heldout_windows"] = float(batch.batch_size)
        return figures

    @torch.no_grad()
    def fit_normalizers(self) -> None:
        """Fit the WAM's normalizers on the replay (a run from scratch, after its first rollout's PPO epochs)."""
        replay, size = self.replay, self.replay.size
        rows = replay.rows(torch.arange(size, device=self.device))

        def flat(tensor):
            return tensor[rows].flatten(0, 1)

        steps = Sequences(
            states=flat(replay.states)[:, None],
            instruction=flat(replay.instruction)[:, None],
            actions=flat(replay.actions)[:, None],
            rewards=flat(replay.rewards)[:, None],
            terminated=flat(replay.terminated)[:, None],
            contacts=flat(replay.states)[:, None, :0],
        )
        pairs = Sequences(
            states=torch.stack((flat(replay.states), flat(replay.next_states)), dim=1),
            instruction=flat(replay.instruction)[:, None].expand(-1, 2, -1),
            actions=flat(replay.actions)[:, None].expand(-1, 2, -1),
            rewards=flat(replay.rewards)[:, None].expand(-1, 2),
            terminated=flat(replay.terminated)[:, None].expand(-1, 2),
            contacts=flat(replay.states)[:, None, :0].expand(-1, 2, -1),
        )
        self.wam.fit_normalizers(steps, pairs)
        self.normalizers_fitted = True
