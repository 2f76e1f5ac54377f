"""The world model: given the history of states and actions (and the instruction), a Gaussian over the normalized
next-state delta plus auxiliary heads (reward, termination, contact flags).

Step ``t`` of a sequence holds the state ``s_t``, the instruction ``g_t`` and the action ``a_t`` taken there.
The token of step ``t`` is ``[norm(s_t), norm(g_t), norm(a_{t-1})]`` (``a_{-1} = 0``): the previous action is part of
what a step knows, which matters under actuation latency. The trunk turns tokens into features ``h_t``; the
dynamics head reads ``(h_t, a_t)`` and predicts the change from ``s_t`` to ``s_{t+1}`` (a :class:`StateSpace` change:
rotation vectors for quaternions; normalized by the one-step change statistics, one scale per state term), the reward
``r_t`` and whether the episode terminated at ``t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .config import ModelCfg
from .normalizer import Normalizers
from .schema import WamSchema
from .state_space import StateSpace
from .trunks import make_trunk, mlp


@dataclass
class StepPrediction:
    """One predicted step, in normalized units, each of shape (B, [T,] ·)."""

    delta_mean: torch.Tensor
    """Mean of the normalized next-state change, (..., D)."""
    delta_log_std: torch.Tensor
    """Log standard deviation of the normalized change, (..., D)."""
    reward: torch.Tensor
    """Normalized reward, (..., 1)."""
    termination_logit: torch.Tensor
    """Logit of 'the episode terminated at this step', (..., 1)."""
    contact_logits: torch.Tensor
    """Logits of the contact flags, (..., C) (C = 0 when the dataset has none)."""


@dataclass
class Rollout:
    """An autoregressive rollout of ``F`` steps."""

    states: torch.Tensor
    """Predicted states ``s_{H}..s_{H+F-1}`` in physical units, (B, F, S)."""
    inputs: torch.Tensor
    """The state each prediction started from (``s_{H-1}`` true, then predicted; true under teacher forcing),
    (B, F, S)."""
    predictions: StepPrediction
    """The head outputs of every step, stacked along dim 1."""


def previous_actions(actions: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
    """``a_{t-1}`` for every step of ``actions`` (B, T, A): the first step's is ``before`` (B, A), the action taken
    just before the sequence (a window cut from the middle of an episode has one), or zeros (an episode's start)."""
    first = torch.zeros_like(actions[:, :1]) if before is None else before[:, None].to(actions.dtype)
    return torch.cat((first, actions[:, :-1]), dim=1)


def stack_predictions(steps: list[StepPrediction]) -> StepPrediction:
    """Per-step predictions (B, ·) stacked into (B, F, ·)."""
    fields = StepPrediction.__dataclass_fields__
    return StepPrediction(**{name: torch.stack([getattr(s, name) for s in steps], dim=1) for name in fields})


class DynamicsHead(nn.Module):
    """(features, normalized action) -> :class:`StepPrediction`."""

    def __init__(self, feature_dim: int, schema: WamSchema, cfg: ModelCfg, delta_dim: int) -> None:
        super().__init__()
        self.state_dim, self.contact_dim = delta_dim, schema.contact_dim
        self.min_log_std, self.max_log_std = cfg.min_log_std, cfg.max_log_std
        out = 2 * self.state_dim + 2 + self.contact_dim
        self.net = mlp(feature_dim + schema.action_dim, cfg.head_hidden, out, layers=2)

    def forward(self, features: torch.Tensor, actions_norm: torch.Tensor) -> StepPrediction:
        out = self.net(torch.cat((features, actions_norm), dim=-1))
        mean, log_std, reward, termination, contacts = out.split(
            [self.state_dim, self.state_dim, 1, 1, self.contact_dim], dim=-1
        )
        # soft clamp keeps the gradient alive at the bounds (as in PETS / MBPO)
        log_std = self.max_log_std - nn.functional.softplus(self.max_log_std - log_std)
        log_std = self.min_log_std + nn.functional.softplus(log_std - self.min_log_std)
        return StepPrediction(mean, log_std, reward, termination, contacts)


class WorldModel(nn.Module):
    """Trunk + dynamics head, with the normalizers inside.

    Args:
        schema: what the model reads and predicts.
        cfg: the model configuration.
    """

    def __init__(self, schema: WamSchema, cfg: ModelCfg) -> None:
        super().__init__()
        self.schema, self.cfg = schema, cfg
        self.space = StateSpace(schema, cfg.rotation)
        """How states differ, compose and are read (rotation vectors for quaternions unless ``rotation=raw``)."""
        space = self.space
        self.normalizers = Normalizers(
            space.feature_dim, schema.instruction_dim, schema.action_dim, delta_dim=space.delta_dim
        )
        token_dim = space.feature_dim + schema.instruction_dim + schema.action_dim
        self.trunk = make_trunk(token_dim, cfg.trunk)
        self.dynamics = DynamicsHead(cfg.trunk.hidden, schema, cfg, space.delta_dim)

    # named steps ---------------------------------------------------------------------------------------------------
    def tokens(self, states: torch.Tensor, instruction: torch.Tensor, prev_actions: torch.Tensor) -> torch.Tensor:
        """Per-step tokens (B, T, D) from physical states (B, T, S), instructions (B, T, I), previous actions."""
        n = self.normalizers
        features = n.state(self.space.features(states))
        return torch.cat((features, n.instruction(instruction), n.action(prev_actions)), dim=-1)

    def delta_target(self, start: torch.Tensor, end: torch.Tensor) -> torch.Tensor:
        """The normalized change (..., D) a prediction from ``start`` must make to land on ``end`` (..., S)."""
        return self.normalizers.delta(self.space.difference(start, end))

    @torch.no_grad()
    def fit_normalizers(self, steps, pairs) -> None:
        """Fit the normalizers: states, instructions, actions and rewards on ``steps`` (windows of one step), the
        changes on ``pairs`` (windows of two consecutive steps of an episode), with one scale per state term when
        ``cfg.delta_scale == "term"``."""
        n, space = self.normalizers, self.space
        n.state.fit(space.features(steps.states[:, 0]))
        n.instruction.fit(steps.instruction[:, 0])
        n.action.fit(steps.actions[:, 0])
        n.reward.fit(steps.rewards[:, :1])
        groups = space.delta_groups() if self.cfg.delta_scale == "term" else None
        n.delta.fit(space.difference(pairs.states[:, 0], pairs.states[:, 1]), groups=groups)

    def encode(self, tokens: torch.Tensor, memory=None):
        """Features (B, T, E) of the tokens and the trunk's memory after them."""
        return self.trunk(tokens, memory)

    def predict_next(self, features: torch.Tensor, actions: torch.Tensor) -> StepPrediction:
        """The next-step prediction from features and the (physical) action taken."""
        return self.dynamics(features, self.normalizers.action(actions))

    def next_state(self, states: torch.Tensor, delta_norm: torch.Tensor) -> torch.Tensor:
        """The state (..., S) reached from ``states`` by the normalized change ``delta_norm`` (..., D), in physical
        units (quaternions composed with the predicted rotation, unit length)."""
        return self.space.compose(states, self.normalizers.delta.inverse(delta_norm))

    # sequences -----------------------------------------------------------------------------------------------------
    def teacher_forced(self, states, instruction, actions, memory=None, before=None):
        """Features and one-step predictions at every step of true sequences (B, T, ·); ``before`` (B, A): the action
        taken before their first step (default zeros: the sequences start episodes)."""
        features, memory = self.encode(self.tokens(states, instruction, previous_actions(actions, before)), memory)
        return features, self.predict_next(features, actions), memory

    def rollout(
        self,
        states: torch.Tensor,
        instruction: torch.Tensor,
        actions: torch.Tensor,
        history: int,
        teacher_states: torch.Tensor | None = None,
        before: torch.Tensor | None = None,
    ) -> Rollout:
        """Autoregressive rollout over the forecast part of sequences.

        Args:
            states: true states (B, H [+ F], S); only the first ``history`` steps are read unless teacher forcing.
            instruction: (B, H + F, I).
            actions: (B, H + F - 1 or more, A): the history's actions then the future's; the prediction of
                ``s_{H+f}`` uses ``a_{H+f-1}``.
            history: H, the number of true steps the model conditions on.
            teacher_states: if given, (B, H + F, S) true states fed back instead of the predictions (teacher forcing).
            before: (B, A), the action taken before the first step (default zeros: the sequences start episodes).

        Returns:
            the :class:`Rollout` of ``F = instruction.shape[1] - H`` steps.
        """
        forecast = instruction.shape[1] - history
        features, memory = self.encode(
            self.tokens(states[:, :history], instruction[:, :history], previous_actions(actions[:, :history], before))
        )
        feature, state = features[:, -1], states[:, history - 1]
        predicted, inputs, steps = [], [], []
        for f in range(forecast):
            t = history - 1 + f  # the step the prediction starts from
            prediction = self.predict_next(feature, actions[:, t])
            inputs.append(state)
            state = self.next_state(state, prediction.delta_mean)
            predicted.append(state)
            steps.append(prediction)
            if f + 1 < forecast:
                if teacher_states is not None:  # the next step starts from the true state, not the prediction
                    state = teacher_states[:, t + 1]
                token = self.tokens(state[:, None], instruction[:, t + 1 : t + 2], actions[:, t : t + 1])
                feature_seq, memory = self.encode(token, memory)
                feature = feature_seq[:, 0]
        return Rollout(torch.stack(predicted, 1), torch.stack(inputs, 1), stack_predictions(steps))


class EnsembleWorldModel(nn.Module):
    """K independently initialized world models; their spread is the epistemic uncertainty.

    ``rollout`` rolls every member out on its own (trajectory sampling, each member feeding back its own
    predictions) and returns the members' rollouts; :meth:`mean_state` averages them.
    """

    def __init__(self, schema: WamSchema, cfg: ModelCfg) -> None:
        super().__init__()
        self.schema, self.cfg = schema, cfg
        self.members = nn.ModuleList(WorldModel(schema, cfg) for _ in range(cfg.ensemble))
        for member in self.members[1:]:
            member.normalizers = self.members[0].normalizers  # one set of statistics, shared

    @property
    def normalizers(self) -> Normalizers:
        return self.members[0].normalizers

    @property
    def space(self) -> StateSpace:
        return self.members[0].space

    def fit_normalizers(self, steps, pairs) -> None:
        """Fit the shared normalizers (see :meth:`WorldModel.fit_normalizers`)."""
        self.members[0].fit_normalizers(steps, pairs)

    def rollout(self, *args, **kwargs) -> list[Rollout]:
        return [member.rollout(*args, **kwargs) for member in self.members]

    def mean_state(self, rollouts: list[Rollout]) -> torch.Tensor:
        """The members' mean predicted states (B, F, S): each member's change from the first member's prediction,
        averaged and applied to it (for vectors the plain mean; quaternions stay unit and sign-consistent)."""
        states = torch.stack([r.states for r in rollouts])
        space = self.space
        offsets = space.difference(states[0].expand_as(states), states)
        return space.compose(states[0], offsets.mean(0))
