"""Joint-WAM PPO: rsl-rl's PPO on a joint WAM's shared trunk, with world-model steps on the fresh rollouts.

Selected by the rsl-rl algorithm config's ``class_name`` (``wam_isaac.training.wam_ppo:WamPPO``; typed config
:class:`~wam_isaac.training.wam_ppo_cfg.WamPpoAlgorithmCfg`), so Isaac Lab's ``OnPolicyRunner`` runs it unchanged
(``isaaclab train --agent rsl_rl_wam_cfg_entry_point``, ``wam train --agent ...``). One
:class:`~wam_isaac.models.wam.JointWAM` (``alg.wam``) is the network: the actor is its action head
(:class:`~wam_isaac.models.rl_adapters.WamActor`), the critic its value head on the same trunk or rsl-rl's MLP on the
``critic`` group.

What differs from :class:`rsl_rl.algorithms.PPO`:

- one optimizer holding every parameter once (PPO chains the actor's and critic's parameters, which share the
  trunk); gradients clipped once per parameter (the actor's, then the critic's own); multi-GPU broadcast and reduce
  over the unique tensors;
- ``process_env_step`` records each transition in a :class:`~wam_isaac.training.replay.TransitionReplay`: the state
  and instruction when the action was chosen, the action, the env's raw reward, ``terminated = dones & ~time_outs``
  and the next state (``extras["final_obs"]`` where the episode ended: the algorithm turns the env's
  ``compute_final_obs`` on);
- ``update`` runs PPO's epochs, then ``world_model.steps`` world-model steps (multi-step loss of
  :func:`~wam_isaac.training.objectives.world_model_loss`, weighted by ``world_model_weight``) on replay windows of
  the training envs, and logs the policy's KL across those steps and the held-out envs' k-step prediction error in
  physical units (``WorldModel/error@k/<term>``, ``WorldModel/ratio@k`` = model / copy-last; they reach
  TensorBoard through the env's ``extras["log"]`` at the next iteration's first step);
- during ``critic_warmup_iterations`` the actor (trunk and action head) is frozen: only the critic (and the dynamics
  head) learn;
- a run from scratch fits the WAM's normalizers on its first rollout, after the first PPO epochs, then keeps them.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict
from itertools import chain
from typing import Any

import torch
from rsl_rl.algorithms import PPO
from rsl_rl.storage import RolloutStorage
from rsl_rl.utils import reduce_gradients_in_buckets, resolve_class, resolve_obs_groups
from tensordict import TensorDict
from torch import nn

from ..cli.errors import UsageError
from ..models.config import ModelCfg, TrunkCfg
from ..models.rl_adapters import (
    INSTRUCTION_GROUP,
    PREVIOUS_ACTION_GROUP,
    STATE_GROUP,
    WamActor,
    WamValue,
    flatten_observations,
    group_vector,
)
from ..models.schema import SchemaError, WamSchema
from ..models.wam import JointWAM
from .imagination import (
    DynamicsEnsemble,
    ImaginationCfg,
    ImaginedRollout,
    ensemble_loss,
    imagination_active,
    imagine,
    imagined_batch_size,
)
from .metrics import error_magnitudes
from .objectives import LossCfg, world_model_loss
from .replay import TransitionReplay
from .sequences import Sequences

WAM_KEYS = (
    "world_model_weight",
    "pretrained_checkpoint",
    "shared_critic",
    "critic_warmup_iterations",
    "replay_capacity",
    "wam_model",
    "world_model",
    "imagination",
)
"""Algorithm-config fields that are WamPPO's own (the rest are PPO's)."""


class PretrainedCheckpointError(UsageError, SchemaError):
    """The pretrained checkpoint cannot be fine-tuned on this task (missing, not a joint WAM, other observations)."""


class WamPPO(PPO):
    """PPO on a joint WAM (see the module docstring).

    Args:
        actor, critic, storage: as for :class:`~rsl_rl.algorithms.PPO`; ``actor`` is a :class:`WamActor`.
        world_model_weight, critic_warmup_iterations, replay_capacity: see :class:`WamPpoAlgorithmCfg`.
        world_model: the :class:`WorldModelStepsCfg` fields as a dict.
        imagination: the :class:`~wam_isaac.training.imagination.ImaginationCfg` fields as a dict.
        normalizers_fitted: whether the WAM's normalizers hold statistics (a pretrained WAM) or must be fitted on
            the first rollout.
        **ppo_kwargs: PPO's own arguments.
    """

    actor: WamActor

    def __init__(
        self,
        actor: WamActor,
        critic: nn.Module,
        storage: RolloutStorage,
        *,
        world_model_weight: float = 1.0,
        critic_warmup_iterations: int = 0,
        replay_capacity: int = 240,
        world_model: dict | None = None,
        imagination: dict | None = None,
        normalizers_fitted: bool = False,
        **ppo_kwargs,
    ) -> None:
        if ppo_kwargs.get("rnd_cfg") or ppo_kwargs.get("symmetry_cfg"):
            raise ValueError("WamPPO supports neither RND nor symmetry augmentation (rnd_cfg / symmetry_cfg)")
        with warnings.catch_warnings():  # PPO's optimizer chains the shared parameters twice; replaced below
            warnings.filterwarnings("ignore", message=".*duplicate parameters.*")
            super().__init__(actor, critic, storage, **ppo_kwargs)
        self.wam: JointWAM = actor.wam
        self.imagination = ImaginationCfg(**(imagination or {}))
        self.ensemble: DynamicsEnsemble | None = None
        """The dynamics ensemble imagination rolls out (the WAM's head and ``ensemble_size - 1`` extra heads)."""
        if self.imagination.enabled:
            if not isinstance(critic, WamValue):
                raise ValueError("imagination needs the shared critic (imagined steps have no 'critic' group)")
            if self.imagination.reward_source != "head":
                raise ValueError("WamPPO imagines with the reward head only: set imagination.reward_source=head")
            self.ensemble = DynamicsEnsemble(actor.wam, self.imagination.ensemble_size)
        extra_heads = list(self.ensemble.parameters()) if self.ensemble is not None else []
        self.parameters_once = list(
            dict.fromkeys(chain(self.actor.parameters(), self.critic.parameters(), extra_heads))
        )
        """Every trainable parameter once: the actor's (the whole WAM), the critic's own, the extra dynamics
        heads."""
        actor_ids = {id(p) for p in self.actor.parameters()}
        self.critic_only = [p for p in self.critic.parameters() if id(p) not in actor_ids]
        """The critic's parameters that are not the actor's (an MLP critic's; none for the shared critic)."""
        self.optimizer = type(self.optimizer)(self.parameters_once, lr=self.learning_rate)
        wam = self.wam
        self.frozen_in_warmup = list(chain(wam.trunk.parameters(), wam.action_head.parameters()))
        """The policy's parameters, frozen during the critic warm-up."""
        self.world_model_params = list(chain(wam.trunk.parameters(), wam.dynamics.parameters(), extra_heads))
        """The parameters the world-model loss (and the extra heads' loss) reaches."""
        self.world_model_weight = float(world_model_weight)
        self.critic_warmup_iterations = int(critic_warmup_iterations)
        self.wm = dict(world_model or {})
        schema = wam.schema
        self.replay = TransitionReplay(
            storage.num_envs, replay_capacity, schema.state_dim, schema.instruction_dim, schema.action_dim, self.device
        )
        heldout = min(storage.num_envs - 1, math.ceil(storage.num_envs * self.wm.get("heldout_env_fraction", 0.125)))
        self.train_envs = torch.ones(storage.num_envs, dtype=torch.bool, device=self.device)
        """Envs whose transitions the world model trains on (the last ``heldout`` are held out)."""
        self.train_envs[storage.num_envs - heldout :] = False
        self.loss_cfg = LossCfg(
            reward_weight=self.wm.get("reward_weight", 0.1), termination_weight=self.wm.get("termination_weight", 0.1)
        )
        self.normalizers_fitted = bool(normalizers_fitted)
        self.iteration = 0
        """Updates done (the critic warm-up counts them)."""
        self.world_model_metrics: dict[str, float] = {}
        """The last update's held-out prediction errors (``WorldModel/...`` tags)."""
        self._pending_log: dict[str, float] = {}

    # observations --------------------------------------------------------------------------------------------------
    def flat(self, obs: TensorDict) -> TensorDict:
        """``obs`` with the WAM's groups flattened (what the rollout storage holds)."""
        return flatten_observations(obs, self.wam.schema)

    def act(self, obs: TensorDict) -> torch.Tensor:
        return super().act(self.flat(obs))

    def process_env_step(self, obs: TensorDict, rewards: torch.Tensor, dones: torch.Tensor, extras: dict) -> None:
        """Record the transition in the replay (raw reward, ``terminated = dones & ~time_outs``, next state from
        ``extras["final_obs"]`` where the episode ended), then PPO's bookkeeping."""
        flat = self.flat(obs)
        schema, step = self.wam.schema, self.transition.observations
        done = dones.reshape(-1).bool()
        time_outs = extras.get("time_outs")
        time_outs = torch.zeros_like(done) if time_outs is None else time_outs.reshape(-1).to(self.device).bool()
        next_states = flat[STATE_GROUP]
        final = extras.get("final_obs")
        if final is not None:  # stale where no env ended this step: only read where ``done``
            final_states = group_vector(final, STATE_GROUP, schema.state_keys, (done.shape[0],)).to(self.device)
            next_states = torch.where(done[:, None], final_states, next_states)
        instruction = step[INSTRUCTION_GROUP] if schema.instruction_keys else step[STATE_GROUP][:, :0]
        self.replay.add(
            step[STATE_GROUP], instruction, self.transition.actions, rewards, done & ~time_outs, done, next_states
        )
        if self._pending_log:
            extras.setdefault("log", {}).update(self._pending_log)
            self._pending_log = {}
        super().process_env_step(flat, rewards, dones, extras)

    def compute_returns(self, obs: TensorDict) -> None:
        super().compute_returns(self.flat(obs))

    # update -----------------------------------------------------------------------------------------------------------
    @property
    def in_warmup(self) -> bool:
        return self.iteration < self.critic_warmup_iterations

    def update(self) -> dict[str, float]:
        """PPO's epochs (actor frozen during the critic warm-up), then the world-model steps; returns the mean
        losses (logged as ``Loss/<key>``)."""
        imagined = self.imagine() if imagination_active(self.imagination, self.iteration) else None
        loss_dict = self.ppo_epochs(imagined)
        if imagined is not None:
            loss_dict.update(imagined_figures(imagined))
        if not self.normalizers_fitted:
            self.fit_normalizers()
        if self.world_model_weight > 0.0:
            loss_dict.update(self.world_model_steps())
            self.world_model_metrics = self.heldout_errors()
            self._pending_log = dict(self.world_model_metrics)
        self.actor.clear_cache()
        self.iteration += 1
        return loss_dict

    def ppo_epochs(self, imagined: ImaginedSamples | None = None) -> dict[str, float]:
        """rsl-rl's PPO update (same minibatches, losses and learning-rate schedule) with every parameter stepped
        and clipped once; during the critic warm-up the loss is the value loss alone and the policy's parameters
        keep their values. ``imagined`` transitions join each minibatch (their share of the loss is their share of
        the samples)."""
        mean_value_loss = mean_surrogate_loss = mean_entropy = 0.0
        warmup = self.in_warmup
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
            self.optimizer.zero_grad()
            loss.backward()
            self.step_optimizer(frozen=self.frozen_in_warmup if warmup else ())
            mean_value_loss += value_loss.item()
            mean_surrogate_loss += surrogate_loss.item()
            mean_entropy += entropy.mean().item()
        obs = self.storage.observations.flatten(0, 1)
        self.actor.update_normalization(obs)
        self.critic.update_normalization(obs)
        updates = self.num_learning_epochs * self.num_mini_batches
        self.storage.clear()
        return {
            "value": mean_value_loss / updates,
            "surrogate": mean_surrogate_loss / updates,
            "entropy": mean_entropy / updates,
        }

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
        """PPO's adaptive schedule: lr / 1.5 when KL > 2 desired, x 1.5 when KL < desired / 2 (within 1e-5..1e-2)."""
        with torch.inference_mode():
            kl_mean = torch.mean(self.actor.get_kl_divergence(old_params, new_params))
            if self.is_multi_gpu:
                torch.distributed.all_reduce(kl_mean, op=torch.distributed.ReduceOp.SUM)
                kl_mean /= self.gpu_world_size
            if self.gpu_global_rank == 0:
                if kl_mean > self.desired_kl * 2.0:
                    self.learning_rate = max(1e-5, self.learning_rate / 1.5)
                elif self.desired_kl / 2.0 > kl_mean > 0.0:
                    self.learning_rate = min(1e-2, self.learning_rate * 1.5)
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

    # imagination --------------------------------------------------------------------------------------------------
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

    # world model --------------------------------------------------------------------------------------------------
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
        return self.wam.act_sequence(batch.states, batch.instruction, batch.actions)

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
        predicted = self.wam.rollout(batch.states, batch.instruction, batch.actions, history).states[:, -1]
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

    # modes, checkpoints, multi-GPU -----------------------------------------------------------------------------------
    def save(self) -> dict:
        """PPO's dict plus ``wam_state_dict``, ``wam_schema``, ``wam_model_cfg``, the replay and WamPPO's counters."""
        saved = super().save()
        saved.update(
            wam_state_dict=self.wam.state_dict(),
            wam_schema=self.wam.schema.to_dict(),
            wam_model_cfg=model_cfg_dict(self.wam.cfg),
            replay_state_dict=self.replay.state_dict(),
            wam_ppo_state={"iteration": self.iteration, "normalizers_fitted": self.normalizers_fitted},
        )
        if self.ensemble is not None:
            saved["ensemble_state_dict"] = self.ensemble.state_dict()
        return saved

    def load(self, loaded_dict: dict, load_cfg: dict | None, strict: bool) -> bool:
        """PPO's load, then the WAM (normalizers included), the replay (unless ``load_cfg["replay"]`` is false) and
        the counters; a ``load_cfg`` without WamPPO's keys (Isaac Lab's ``--no-resume_optimizer_state``) loads them."""
        load_iteration = super().load(loaded_dict, load_cfg, strict)
        load_cfg = load_cfg or {}
        if "wam_state_dict" in loaded_dict and load_cfg.get("actor", True):
            self.wam.load_state_dict(loaded_dict["wam_state_dict"], strict=strict)
        if self.ensemble is not None and "ensemble_state_dict" in loaded_dict and load_cfg.get("actor", True):
            self.ensemble.load_state_dict(loaded_dict["ensemble_state_dict"], strict=strict)
        if "replay_state_dict" in loaded_dict and load_cfg.get("replay", True):
            self.replay.load_state_dict(loaded_dict["replay_state_dict"])
        state = loaded_dict.get("wam_ppo_state", {})
        self.normalizers_fitted = bool(state.get("normalizers_fitted", self.normalizers_fitted))
        if load_iteration and "iteration" in state:
            self.iteration = int(state["iteration"])
        return load_iteration

    def broadcast_parameters(self) -> None:
        """Broadcast every unique parameter and buffer tensor (the WAM, an MLP critic, the extra dynamics heads) from
        rank 0."""
        extra = self.ensemble.state_dict().values() if self.ensemble is not None else ()
        tensors = chain(self._raw_actor.state_dict().values(), self._raw_critic.state_dict().values(), extra)
        for tensor in {t.data_ptr(): t for t in tensors}.values():
            torch.distributed.broadcast(tensor, src=0)

    def reduce_parameters(self) -> None:
        """Average the gradients of every unique parameter across GPUs (a shared parameter once)."""
        reduce_gradients_in_buckets(self.parameters_once, self.gpu_world_size, self.grad_reduce_bucket_mb)

    # construction --------------------------------------------------------------------------------------------------
    @staticmethod
    def construct_algorithm(obs: TensorDict, env, cfg: dict, device: str) -> WamPPO:
        """Build the joint WAM (from ``pretrained_checkpoint`` or from scratch), its actor and critic, the rollout
        storage (WAM groups flattened) and the algorithm; turn the env's ``compute_final_obs`` on."""
        alg_class, alg_cfg = resolve_class(cfg["algorithm"])
        wam_cfg = {key: alg_cfg.pop(key) for key in WAM_KEYS if key in alg_cfg}
        alg_cfg.pop("share_cnn_encoders", None)
        cfg["obs_groups"] = resolve_obs_groups(obs, cfg["obs_groups"], ["actor", "critic"])
        if PREVIOUS_ACTION_GROUP not in obs.keys():  # noqa: SIM118 (a TensorDict)
            raise ValueError(
                f"WamPPO needs a '{PREVIOUS_ACTION_GROUP}' observation group (mdp.last_action) in the task's env cfg"
            )
        enable_final_observations(env)
        env_schema = WamSchema.from_observations(obs, [env.num_actions])
        wam = build_joint_wam(env_schema, wam_cfg, device)
        actor = WamActor(wam).to(device)
        print(f"Actor Model: {actor}")
        if wam_cfg.get("shared_critic", True):
            critic = WamValue(actor)
        else:
            critic_class, critic_cfg = resolve_class(cfg["critic"])
            critic = critic_class(obs, cfg["obs_groups"], "critic", 1, **critic_cfg).to(device)
        print(f"Critic Model: {critic}")
        flat = flatten_observations(obs, wam.schema)
        storage = RolloutStorage("rl", env.num_envs, cfg["num_steps_per_env"], flat, [env.num_actions], device)
        alg = alg_class(
            actor,
            critic,
            storage,
            device=device,
            world_model_weight=wam_cfg.get("world_model_weight", 1.0),
            critic_warmup_iterations=wam_cfg.get("critic_warmup_iterations", 0),
            replay_capacity=wam_cfg.get("replay_capacity", 240),
            world_model=wam_cfg.get("world_model"),
            imagination=wam_cfg.get("imagination"),
            normalizers_fitted=bool(wam_cfg.get("pretrained_checkpoint")),
            **alg_cfg,
            multi_gpu_cfg=cfg["multi_gpu"],
        )
        alg.compile(cfg.get("torch_compile_mode"))
        return alg


def enable_final_observations(env) -> None:
    """Make the env put its observations before a reset in ``extras["final_obs"]`` (Isaac Lab's
    ``compute_final_obs``; read at every step, so turning it on at construction takes effect at once)."""
    unwrapped = getattr(env, "unwrapped", env)
    if not hasattr(unwrapped.cfg, "compute_final_obs"):
        raise ValueError(f"{type(unwrapped).__name__} has no compute_final_obs: WamPPO needs Isaac Lab >= 3.0 envs")
    unwrapped.cfg.compute_final_obs = True


def model_cfg_dict(cfg: ModelCfg) -> dict[str, Any]:
    return asdict(cfg)


def scratch_model_cfg(settings: dict | None) -> ModelCfg:
    """The :class:`ModelCfg` of a joint WAM from scratch, from :class:`WamModelCfg` fields."""
    s = dict(settings or {})
    trunk = TrunkCfg(kind=s.get("trunk", "gru"), hidden=s.get("hidden", 128), layers=s.get("layers", 2))
    return ModelCfg(
        kind="joint",
        trunk=trunk,
        head_hidden=s.get("head_hidden", 128),
        rotation=s.get("rotation", "rotvec"),
        delta_scale=s.get("delta_scale", "term"),
    )


def build_joint_wam(env_schema: WamSchema, wam_cfg: dict, device) -> JointWAM:
    """The joint WAM: loaded from ``pretrained_checkpoint`` (checked against the env's observation groups) or new.

    Raises:
        PretrainedCheckpointError: the checkpoint is missing, unreadable, not a joint WAM, or made for other
            observation groups (the message names the first differing key).
    """
    path = wam_cfg.get("pretrained_checkpoint")
    if not path:
        return JointWAM(env_schema, scratch_model_cfg(wam_cfg.get("wam_model"))).to(device)
    from .checkpoint import CheckpointError
    from .run import load_model

    if not os.path.isfile(path):
        raise PretrainedCheckpointError(f"pretrained checkpoint '{path}' does not exist (a wam train-model checkpoint)")
    try:
        model, train_cfg, _ = load_model(path, device=device)
    except CheckpointError as error:
        raise PretrainedCheckpointError(str(error)) from None
    if not isinstance(model, JointWAM):
        raise PretrainedCheckpointError(
            f"pretrained checkpoint '{path}' holds a '{train_cfg.model.kind}' model; WamPPO fine-tunes a joint WAM"
            " (wam train-model --model joint)"
        )
    try:
        model.schema.check_observations_compatible(env_schema)
    except SchemaError as error:
        raise PretrainedCheckpointError(f"pretrained checkpoint '{path}' does not fit this task: {error}") from None
    return model.train()


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
