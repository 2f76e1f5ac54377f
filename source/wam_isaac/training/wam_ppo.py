"""Joint-WAM PPO: rsl-rl's PPO on a joint WAM's shared trunk, with world-model steps on the fresh rollouts.

Selected by the rsl-rl algorithm config's ``class_name`` (``wam_isaac.training.wam_ppo:WamPPO``; typed config
:class:`~wam_isaac.training.wam_ppo_cfg.WamPpoAlgorithmCfg`), so Isaac Lab's ``OnPolicyRunner`` runs it unchanged
(``isaaclab train --agent rsl_rl_wam_cfg_entry_point``, ``wam train --agent ...``). One
:class:`~wam_isaac.models.wam.JointWAM` (``alg.wam``) is the network: the actor is its action head
(:class:`~wam_isaac.models.rl_adapters.WamActor`), the critic its value head on the same trunk or rsl-rl's MLP on the
``critic`` group. A pretrained cascaded WAM (MLP world model) fine-tunes the same way: its policy is the actor
(:class:`~wam_isaac.models.rl_adapters.CascadedActor`), its world model ``alg.wam``, the critic rsl-rl's MLP.

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
- a run from scratch fits the WAM's normalizers on its first rollout, after the first PPO epochs, then keeps them;
- with ``anchor_kl_weight > 0``, ``anchor_kl_weight`` x KL(pi_initial || pi) joins PPO's loss (``alg.anchor``: a
  frozen copy of the initial actor, the pretrained one in a fine-tune), decayed over ``anchor_decay_iterations``.

The class is split by concept: PPO's epochs in :mod:`.wam_ppo_epochs`, the world-model steps in
:mod:`.wam_ppo_world_model`, imagination in :mod:`.wam_ppo_imagination`, the joint WAM's construction in
:mod:`.wam_ppo_build`.
"""

from __future__ import annotations

import copy
import math
import warnings
from itertools import chain

import torch
from rsl_rl.algorithms import PPO
from rsl_rl.storage import RolloutStorage
from rsl_rl.utils import reduce_gradients_in_buckets, resolve_class, resolve_obs_groups
from tensordict import TensorDict
from torch import nn

from ..distributed.wam_ppo_sync import RankSync  # cross-rank agreement (several ranks)
from ..models.rl_adapters import (
    INSTRUCTION_GROUP,
    PREVIOUS_ACTION_GROUP,
    STATE_GROUP,
    CascadedActor,
    WamActor,
    WamValue,
    flatten_observations,
    group_vector,
)
from ..models.schema import WamSchema
from ..models.wam import CascadedWAM
from ..models.world_model import WorldModel
from .config import PLAIN_NLL_BETA
from .imagination import DynamicsEnsemble, ImaginationCfg, imagination_active
from .objectives import LossCfg
from .replay import TransitionReplay
from .wam_ppo_build import (
    WAM_KEYS,
    PretrainedCheckpointError,
    build_wam,
    check_critic,
    enable_final_observations,
    model_cfg_dict,
    scratch_model_cfg,
)
from .wam_ppo_epochs import PpoEpochs
from .wam_ppo_imagination import ImaginationSteps, ImaginedSamples, imagined_figures
from .wam_ppo_world_model import WorldModelSteps

__all__ = [
    "WAM_KEYS",
    "ImaginedSamples",
    "PretrainedCheckpointError",
    "WamPPO",
    "build_wam",
    "enable_final_observations",
    "imagined_figures",
    "model_cfg_dict",
    "scratch_model_cfg",
]


class WamPPO(RankSync, PpoEpochs, WorldModelSteps, ImaginationSteps, PPO):
    """PPO on a joint WAM (see the module docstring).

    Args:
        actor, critic, storage: as for :class:`~rsl_rl.algorithms.PPO`; ``actor`` is a :class:`WamActor`.
        world_model_weight, critic_warmup_iterations, replay_capacity: see :class:`WamPpoAlgorithmCfg`.
        world_model: the :class:`WorldModelStepsCfg` fields as a dict.
        imagination: the :class:`~wam_isaac.training.imagination.ImaginationCfg` fields as a dict.
        normalizers_fitted: whether the WAM's normalizers hold statistics (a pretrained WAM) or must be fitted on
            the first rollout.
        policy_learning_rate: the learning rate from the end of the critic warm-up on, and the adaptive schedule's
            ceiling (``None``: ``learning_rate`` and rsl-rl's ceiling 1e-2); see
            :attr:`WamPpoAlgorithmCfg.fine_tune_learning_rate`.
        anchor_kl_weight, anchor_decay_iterations: the anchor to the initial policy; see
            :class:`WamPpoAlgorithmCfg`.
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
        policy_learning_rate: float | None = None,
        anchor_kl_weight: float = 0.0,
        anchor_decay_iterations: int = 0,
        **ppo_kwargs,
    ) -> None:
        if ppo_kwargs.get("rnd_cfg") or ppo_kwargs.get("symmetry_cfg"):
            raise ValueError("WamPPO supports neither RND nor symmetry augmentation (rnd_cfg / symmetry_cfg)")
        with warnings.catch_warnings():  # PPO's optimizer chains the shared parameters twice; replaced below
            warnings.filterwarnings("ignore", message=".*duplicate parameters.*")
            super().__init__(actor, critic, storage, **ppo_kwargs)
        self.wam: WorldModel = actor.wam
        """The world model the world-model steps train: the joint WAM itself, or a cascaded WAM's world model."""
        if anchor_kl_weight < 0.0 or anchor_decay_iterations < 0:
            raise ValueError(
                f"anchor_kl_weight ({anchor_kl_weight}) and anchor_decay_iterations ({anchor_decay_iterations}) must"
                " be >= 0"
            )
        self.anchor_kl_weight = float(anchor_kl_weight)
        self.anchor_decay_iterations = int(anchor_decay_iterations)
        self.anchor: WamActor | None = None
        """A frozen copy of the initial actor (the pretrained policy of a fine-tune) the anchor term pulls towards;
        ``None`` without an anchor. Not in the optimizer."""
        if self.anchor_kl_weight > 0.0:
            self.anchor = copy.deepcopy(actor).requires_grad_(False)
        self.imagination = ImaginationCfg(**(imagination or {}))
        self.ensemble: DynamicsEnsemble | None = None
        """The dynamics ensemble imagination rolls out (the WAM's head and ``ensemble_size - 1`` extra heads)."""
        if self.imagination.enabled:
            if not isinstance(critic, WamValue):
                raise ValueError("imagination needs the shared critic (imagined steps have no 'critic' group)")
            if self.imagination.reward_source != "head":
                # the tasks' reward terms read the live scene (articulations, sensors), not a state vector: a task
                # reward on predicted states needs a per-task reward_fn(s, a, s', g) mirroring the env cfg
                raise ValueError(
                    "WamPPO imagines with the reward head only (the tasks' reward terms read the live scene, not"
                    " predicted states): set imagination.reward_source=head"
                )
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
        self.frozen_in_warmup = actor.policy_parameters()
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
        self.policy_learning_rate = None if policy_learning_rate is None else float(policy_learning_rate)
        self.max_learning_rate = 1.0e-2
        """Ceiling of the adaptive schedule (rsl-rl's; :attr:`policy_learning_rate` once the policy learns)."""
        self.start_policy_learning_rate()
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
        self.start_policy_learning_rate()
        return loss_dict

    def start_policy_learning_rate(self) -> None:
        """From the end of the critic warm-up on (at once without one), the learning rate is
        :attr:`policy_learning_rate` and the adaptive schedule never raises it above it."""
        if self.policy_learning_rate is None or self.iteration != self.critic_warmup_iterations:
            return
        self.learning_rate = self.max_learning_rate = self.policy_learning_rate
        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate

    # modes, checkpoints, multi-GPU -----------------------------------------------------------------------------------
    def save(self) -> dict:
        """PPO's dict plus ``wam_state_dict``, ``wam_schema``, ``wam_model_cfg``, the replay and WamPPO's counters and
        world-model ``dynamics_beta``."""
        saved = super().save()
        saved.update(
            wam_state_dict=self.actor.model.state_dict(),
            wam_schema=self.wam.schema.to_dict(),
            wam_model_cfg=model_cfg_dict(self.actor.model.cfg),
            replay_state_dict=self.replay.state_dict(),
            wam_ppo_state={
                "iteration": self.iteration,
                "normalizers_fitted": self.normalizers_fitted,
                "dynamics_beta": self.loss_cfg.dynamics_beta,
            },
        )
        if self.ensemble is not None:
            saved["ensemble_state_dict"] = self.ensemble.state_dict()
        if self.anchor is not None:
            saved["anchor_state_dict"] = self.anchor.model.state_dict()
        return saved

    def load(self, loaded_dict: dict, load_cfg: dict | None, strict: bool) -> bool:
        """PPO's load, then the WAM (normalizers included), the replay (unless ``load_cfg["replay"]`` is false) and
        the counters (a ``load_cfg`` without WamPPO's keys, as Isaac Lab's ``--no-resume_optimizer_state``, loads
        them); when the iteration is loaded (a resume), also the world-model loss's ``dynamics_beta``, or
        :data:`~wam_isaac.training.config.PLAIN_NLL_BETA` from a checkpoint saved before beta-NLL."""
        load_iteration = super().load(loaded_dict, load_cfg, strict)
        load_cfg = load_cfg or {}
        if "wam_state_dict" in loaded_dict and load_cfg.get("actor", True):
            self.actor.model.load_state_dict(loaded_dict["wam_state_dict"], strict=strict)
        if self.ensemble is not None and "ensemble_state_dict" in loaded_dict and load_cfg.get("actor", True):
            self.ensemble.load_state_dict(loaded_dict["ensemble_state_dict"], strict=strict)
        if self.anchor is not None and "anchor_state_dict" in loaded_dict:
            self.anchor.model.load_state_dict(loaded_dict["anchor_state_dict"], strict=strict)
        if "replay_state_dict" in loaded_dict and load_cfg.get("replay", True):
            self.replay.load_state_dict(loaded_dict["replay_state_dict"])
        state = loaded_dict.get("wam_ppo_state", {})
        self.normalizers_fitted = bool(state.get("normalizers_fitted", self.normalizers_fitted))
        if load_iteration:  # the run continues on the loss it trained with (saved before beta-NLL: the plain NLL)
            self.loss_cfg.dynamics_beta = float(state.get("dynamics_beta", PLAIN_NLL_BETA))
        if load_iteration and "iteration" in state:
            self.iteration = int(state["iteration"])
            if self.policy_learning_rate is not None and self.iteration >= self.critic_warmup_iterations:
                self.max_learning_rate = self.policy_learning_rate  # a resumed fine-tune keeps its ceiling
                self.learning_rate = min(self.learning_rate, self.max_learning_rate)
                for group in self.optimizer.param_groups:
                    group["lr"] = self.learning_rate
        return load_iteration

    def broadcast_parameters(self) -> None:
        """Broadcast every unique parameter and buffer tensor (the WAM, an MLP critic, the extra dynamics heads) from
        rank 0."""
        extra = list(self.ensemble.state_dict().values()) if self.ensemble is not None else []
        extra += list(self.anchor.state_dict().values()) if self.anchor is not None else []
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
        wam = build_wam(env_schema, wam_cfg, device)
        actor = (CascadedActor(wam) if isinstance(wam, CascadedWAM) else WamActor(wam)).to(device)
        print(f"Actor Model: {actor}")
        check_critic(wam, wam_cfg.get("shared_critic", True), wam_cfg.get("pretrained_checkpoint"))
        if wam_cfg.get("shared_critic", True):
            critic = WamValue(actor)
        else:
            critic_class, critic_cfg = resolve_class(cfg["critic"])
            critic = critic_class(obs, cfg["obs_groups"], "critic", 1, **critic_cfg).to(device)
        print(f"Critic Model: {critic}")
        flat = flatten_observations(obs, wam.schema)
        pretrained = bool(wam_cfg.get("pretrained_checkpoint"))
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
            normalizers_fitted=pretrained,
            policy_learning_rate=wam_cfg.get("fine_tune_learning_rate") if pretrained else None,
            anchor_kl_weight=wam_cfg.get("anchor_kl_weight", 0.0),
            anchor_decay_iterations=wam_cfg.get("anchor_decay_iterations", 0),
            **alg_cfg,
            multi_gpu_cfg=cfg["multi_gpu"],
        )
        alg.compile(cfg.get("torch_compile_mode"))
        return alg
