"""World Action Models: a world model that also acts.

- :class:`JointWAM`: one trunk shared by the dynamics head, a Gaussian action head (the policy) and a value head;
  the world-model loss and the action loss both shape the trunk.
- :class:`CascadedWAM`: a world model trained on its own loss alone, and a separate policy MLP that acts on the
  current step plus the world model's prediction ``cascade_horizon`` steps ahead (the baseline the joint WAM must
  beat: modular, but the world model's errors reach the policy unfiltered).

Both expose ``act_sequence`` (actions for every step of true sequences, for behaviour cloning and evaluation) and
``act`` (the action of the last step of a batch of histories, for closed-loop control).
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelCfg
from .schema import WamSchema
from .trunks import mlp
from .world_model import WorldModel, previous_actions


class GaussianActionHead(nn.Module):
    """A diagonal Gaussian over normalized actions: the mean from the features, a state-independent log std (as in
    rsl-rl's actor)."""

    def __init__(self, feature_dim: int, action_dim: int, hidden: int, init_std: float = 0.5) -> None:
        super().__init__()
        self.mean = mlp(feature_dim, hidden, action_dim, layers=2)
        self.log_std = nn.Parameter(torch.full((action_dim,), float(torch.log(torch.tensor(init_std)))))

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log std of the normalized action, each (..., A)."""
        mean = self.mean(features)
        return mean, self.log_std.clamp(-5.0, 1.0).expand_as(mean)


class JointWAM(WorldModel):
    """World model, policy and value function on one shared trunk."""

    def __init__(self, schema: WamSchema, cfg: ModelCfg) -> None:
        super().__init__(schema, cfg)
        self.action_head = GaussianActionHead(cfg.trunk.hidden, schema.action_dim, cfg.head_hidden)
        self.value_head = mlp(cfg.trunk.hidden, cfg.head_hidden, 1, layers=2)

    def policy(self, features: torch.Tensor) -> torch.distributions.Normal:
        """The action distribution in physical units, from trunk features (..., E)."""
        mean, log_std = self.action_head(features)
        scale = self.normalizers.action.std
        return torch.distributions.Normal(self.normalizers.action.inverse(mean), log_std.exp() * scale)

    def value(self, features: torch.Tensor) -> torch.Tensor:
        """State value (offline: reward / the reward normalizer's std, see ``objectives.value_targets``; under WamPPO:
        the env's reward units, PPO's returns), (..., 1)."""
        return self.value_head(features)

    def act_sequence(self, states, instruction, actions, before=None) -> torch.distributions.Normal:
        """The policy at every step of true sequences (B, T, ·), conditioned on the steps up to each; ``before``
        (B, A): the action taken before their first step (default zeros: the sequences start episodes)."""
        features, _ = self.encode(self.tokens(states, instruction, previous_actions(actions, before)))
        return self.policy(features)

    def act(self, states, instruction, prev_actions) -> torch.Tensor:
        """Mean action for the last step of histories: states, instruction (B, H, ·), ``a_{t-1}`` (B, H, A)."""
        features, _ = self.encode(self.tokens(states, instruction, prev_actions))
        return self.policy(features[:, -1]).mean


class CascadedWAM(nn.Module):
    """A world model, and a policy on (current step, predicted future).

    The policy's input at step ``t``: ``norm(s_t)``, ``norm(g_t)``, ``norm(a_{t-1})`` and the predicted change
    ``norm(s^_{t+k}) - norm(s_t)`` (state features: quaternions as rotation-matrix columns), where ``s^_{t+k}`` is
    the world model rolled ``k = cascade_horizon`` steps from ``t`` with the previous action held (what happens if
    nothing changes). The prediction is detached: the world model learns from its own loss only.
    """

    def __init__(self, schema: WamSchema, cfg: ModelCfg) -> None:
        super().__init__()
        self.schema, self.cfg = schema, cfg
        self.world_model = WorldModel(schema, cfg)
        in_dim = 2 * self.world_model.space.feature_dim + schema.instruction_dim + schema.action_dim
        self.action_head = GaussianActionHead(in_dim, schema.action_dim, cfg.policy_hidden)

    @property
    def normalizers(self):
        return self.world_model.normalizers

    def predicted_change(self, states, instruction, prev_actions) -> torch.Tensor:
        """``norm(s^_{t+k}) - norm(s_t)`` for the last step of histories (B, H, ·), detached, (B, F)."""
        model, k = self.world_model, self.cfg.cascade_horizon
        with torch.no_grad():
            features, memory = model.encode(model.tokens(states, instruction, prev_actions))
            feature, state, held = features[:, -1], states[:, -1], prev_actions[:, -1]
            start = state
            for step in range(k):
                state = model.next_state(state, model.predict_next(feature, held).delta_mean)
                if step + 1 < k:
                    token = model.tokens(state[:, None], instruction[:, -1:], held[:, None])
                    feature_seq, memory = model.encode(token, memory)
                    feature = feature_seq[:, 0]
        features = model.space.features
        return (features(state) - features(start)) / model.normalizers.state.std

    def policy_at_last(self, states, instruction, prev_actions) -> torch.distributions.Normal:
        """The action distribution (physical units) at the last step of histories (B, H, ·)."""
        n = self.normalizers
        change = self.predicted_change(states, instruction, prev_actions)
        state = n.state(self.world_model.space.features(states[:, -1]))
        inputs = torch.cat((state, n.instruction(instruction[:, -1]), n.action(prev_actions[:, -1]), change), -1)
        mean, log_std = self.action_head(inputs)
        return torch.distributions.Normal(n.action.inverse(mean), log_std.exp() * n.action.std)

    def act(self, states, instruction, prev_actions) -> torch.Tensor:
        """Mean action for the last step of histories (B, H, ·)."""
        return self.policy_at_last(states, instruction, prev_actions).mean

    @property
    def per_step(self) -> bool:
        """Whether the world model's features at a step depend on that step alone (an MLP trunk): the policy then
        needs no history, and acts inside rsl-rl as a feed-forward actor."""
        return self.cfg.trunk.kind == "mlp"

    def policy_per_step(self, states, instruction, prev_actions) -> torch.distributions.Normal:
        """The policy at every step of inputs (..., ·), each step the last of a one-step history: exact for a
        :attr:`per_step` world model only (what :class:`~wam_isaac.models.rl_adapters.CascadedActor` acts with).

        Raises:
            ValueError: the world model's trunk carries memory (GRU or transformer).
        """
        if not self.per_step:
            raise ValueError(
                f"a cascaded WAM acts step by step with an mlp world-model trunk only, not '{self.cfg.trunk.kind}'"
            )
        batch, flat = states.shape[:-1], states.reshape(-1, 1, states.shape[-1])
        count = flat.shape[0]  # explicit: -1 is ambiguous for an empty instruction (tasks without one)
        policy = self.policy_at_last(flat, *(x.reshape(count, 1, x.shape[-1]) for x in (instruction, prev_actions)))
        return torch.distributions.Normal(policy.mean.reshape(*batch, -1), policy.stddev.reshape(*batch, -1))

    def act_sequence(self, states, instruction, actions, before=None) -> torch.distributions.Normal:
        """The policy at every step of true sequences (B, T, ·), ``before`` as for :meth:`JointWAM.act_sequence`
        (:meth:`policy_per_step`)."""
        return self.policy_per_step(states, instruction, previous_actions(actions, before))


def build_model(schema: WamSchema, cfg: ModelCfg) -> nn.Module:
    """The model ``cfg.kind`` names: a (possibly ensembled) world model, a joint or a cascaded WAM."""
    from .world_model import EnsembleWorldModel

    if cfg.kind == "joint":
        return JointWAM(schema, cfg)
    if cfg.kind == "cascaded":
        return CascadedWAM(schema, cfg)
    if cfg.kind in ("mlp", "gru", "transformer"):
        return EnsembleWorldModel(schema, cfg) if cfg.ensemble > 1 else WorldModel(schema, cfg)
    raise ValueError(f"unknown model kind '{cfg.kind}'")


def world_model_of(model: nn.Module):
    """The world model inside any model (itself for a world model or an ensemble, or a joint WAM)."""
    return model.world_model if isinstance(model, CascadedWAM) else model
