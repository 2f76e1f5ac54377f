"""rsl-rl 5.5 models over one :class:`~wam_isaac.models.wam.JointWAM`: the actor is its action head, the shared
critic its value head, both on its trunk; or over a :class:`~wam_isaac.models.wam.CascadedWAM` (MLP world model):
the actor is its policy (:class:`CascadedActor`), the critic rsl-rl's own MLP.

rsl-rl's PPO calls models as ``model(obs, masks, hidden_state, stochastic_output)`` and reads their distribution
through ``output_*`` / ``get_output_log_prob`` / ``get_kl_divergence`` (the contract of ``rsl_rl.models.MLPModel``).
:class:`WamActor` honours it on a joint WAM: its input at step ``t`` is the WAM's token ``[norm(s_t), norm(g_t),
norm(a_{t-1})]`` from the observation groups ``world_model`` (the state, term by term in the schema's order),
``instruction`` (the goal; none for Cartpole) and ``previous_action`` (``a_{t-1}``, 0 after a reset), exactly what
``wam train-model`` trained the WAM on, so a pretrained joint WAM fine-tunes without any change of input. A GRU trunk
makes the actor recurrent (rsl-rl's recurrent PPO path: the hidden state is carried over the episode and reset at
its end); an MLP trunk makes it feed-forward.

Observations arrive either as the env's nested groups (``obs["world_model"]["cube_pos"]``) or flattened (one
``(N, S)`` tensor per group, as :func:`flatten_observations` stores them in rsl-rl's rollout storage, which cannot
hold nested groups).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from tensordict import TensorDict
from torch import nn

from .schema import WamSchema
from .wam import CascadedWAM, JointWAM

STATE_GROUP = "world_model"
"""Observation group holding the state the WAM predicts (and reads)."""
INSTRUCTION_GROUP = "instruction"
"""Observation group holding the instruction (absent for tasks without one)."""
PREVIOUS_ACTION_GROUP = "previous_action"
"""Observation group holding the previous action ``a_{t-1}`` (``mdp.last_action``; 0 after a reset)."""


def group_vector(obs: Mapping, group: str, keys: dict[str, list[int]], batch_shape) -> torch.Tensor:
    """A group's terms as one tensor (..., D): the tensor itself if the group is flat, else its terms flattened and
    concatenated in ``keys`` order (``obs/<group>/<term>`` keys); (..., 0) when ``keys`` is empty."""
    if not keys:
        return torch.zeros(*batch_shape, 0, device=_device(obs))
    value = obs[group]
    if isinstance(value, torch.Tensor):
        return value
    return torch.cat([value[key.rsplit("/", 1)[-1]].reshape(*batch_shape, -1) for key in keys], dim=-1)


def _device(obs: Mapping) -> torch.device:
    if isinstance(obs, TensorDict) and obs.device is not None:
        return obs.device
    for value in obs.values():
        return value.device if isinstance(value, torch.Tensor) else _device(value)
    return torch.device("cpu")


def flatten_observations(obs: TensorDict, schema: WamSchema) -> TensorDict:
    """``obs`` with the ``world_model`` and ``instruction`` groups as one tensor each (schema order), the other groups
    unchanged: what rsl-rl's rollout storage can hold (it stores nested groups as empty tensors)."""
    flat = {key: value for key, value in obs.items() if key not in (STATE_GROUP, INSTRUCTION_GROUP)}
    batch = obs.batch_size
    flat[STATE_GROUP] = group_vector(obs, STATE_GROUP, schema.state_keys, batch)
    if schema.instruction_keys:
        flat[INSTRUCTION_GROUP] = group_vector(obs, INSTRUCTION_GROUP, schema.instruction_keys, batch)
    return TensorDict(flat, batch_size=batch, device=obs.device)


class WamActor(nn.Module):
    """The joint WAM's action head as an rsl-rl actor (a diagonal Gaussian in physical action units).

    Args:
        wam: the joint WAM (its normalizers fitted, or fitted later by the algorithm).
    """

    def __init__(self, wam: JointWAM) -> None:
        super().__init__()
        if wam.cfg.trunk.kind not in ("gru", "mlp"):
            raise ValueError(
                f"a joint WAM with a '{wam.cfg.trunk.kind}' trunk cannot act inside rsl-rl (its hidden-state storage"
                " holds GRU/LSTM states only): use a gru or mlp trunk"
            )
        self.wam = wam
        self.hidden_state: torch.Tensor | None = None
        """GRU memory of every env during rollouts, (layers, N, E); ``None`` before the first step."""
        self._distribution: torch.distributions.Normal | None = None
        self._last: tuple | None = None
        """(obs, masks, features) of the last forward: the shared critic reads the same features."""

    @property
    def is_recurrent(self) -> bool:
        """Whether the trunk carries a hidden state (GRU)."""
        return self.wam.cfg.trunk.kind == "gru"

    @property
    def schema(self) -> WamSchema:
        return self.wam.schema

    @property
    def model(self) -> nn.Module:
        """The whole WAM this actor acts with (what a checkpoint's ``wam_state_dict`` holds)."""
        return self.wam

    def policy_parameters(self) -> list[nn.Parameter]:
        """The parameters that make the policy (frozen during a critic warm-up): the trunk and the action head."""
        return [*self.wam.trunk.parameters(), *self.wam.action_head.parameters()]

    # inputs and features -------------------------------------------------------------------------------------------
    def inputs(self, obs: Mapping) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The state, instruction and previous action of ``obs`` (batch shape of ``obs``, then S, I, A)."""
        schema, previous = self.schema, obs[PREVIOUS_ACTION_GROUP]
        batch = previous.shape[:-1]
        states = group_vector(obs, STATE_GROUP, schema.state_keys, batch)
        return states, group_vector(obs, INSTRUCTION_GROUP, schema.instruction_keys, batch), previous

    def tokens(self, obs: Mapping) -> torch.Tensor:
        """The WAM's tokens of ``obs`` (batch shape of ``obs``, then D)."""
        return self.wam.tokens(*self.inputs(obs))

    def features(self, obs, masks=None, hidden_state=None, advance: bool = True) -> torch.Tensor:
        """Trunk features of ``obs``.

        - rollout (``masks is None``): obs (N, ·) -> (N, E); a GRU starts from :attr:`hidden_state` and, with
          ``advance``, keeps its new state;
        - update (recurrent): padded trajectories (T, B, ·) from ``hidden_state`` (layers, B, E), unpadded to
          (T, N, E) with rsl-rl's ``masks``.
        """
        from rsl_rl.utils import unpad_trajectories

        if not self.is_recurrent:
            if masks is not None:
                obs = unpad_trajectories(obs, masks)
            return self.wam.encode(self.tokens(obs))[0]
        tokens = self.tokens(obs)
        if masks is None:
            features, memory = self.wam.encode(tokens[:, None], self.hidden_state)
            if advance:
                self.hidden_state = memory
            return features[:, 0]
        if hidden_state is None:
            raise ValueError("a recurrent WamActor needs the stored hidden states during the policy update")
        features, _ = self.wam.encode(tokens.transpose(0, 1), hidden_state)
        return unpad_trajectories(features.transpose(0, 1), masks)

    # rsl-rl model contract -------------------------------------------------------------------------------------------
    def forward(self, obs, masks=None, hidden_state=None, stochastic_output: bool = False) -> torch.Tensor:
        """A sampled action (``stochastic_output``) or the mean action, physical units (..., A)."""
        features = self.features(obs, masks, hidden_state)
        self._last = (obs, masks, features)
        self._distribution = self.wam.policy(features)
        return self._distribution.sample() if stochastic_output else self._distribution.mean

    def cached_features(self, obs, masks) -> torch.Tensor | None:
        """The features of the last forward if it was on these very ``obs`` and ``masks`` objects."""
        if self._last is not None and self._last[0] is obs and self._last[1] is masks:
            return self._last[2]
        return None

    def clear_cache(self) -> None:
        """Forget the last forward's features (they may hold an autograd graph)."""
        self._last = None

    def reset(self, dones: torch.Tensor | None = None, hidden_state=None) -> None:
        """Zero the memory of the envs that are done (all of it, or set it to ``hidden_state``, if ``dones`` is
        None)."""
        if dones is None:
            self.hidden_state = hidden_state
        elif self.hidden_state is not None:
            # out of place: a memory made under inference mode cannot be written to outside it
            ended = (dones.reshape(-1) == 1).to(self.hidden_state.device)
            self.hidden_state = self.hidden_state.masked_fill(ended[:, None], 0.0)

    def get_hidden_state(self):
        return self.hidden_state

    def detach_hidden_state(self, dones: torch.Tensor | None = None) -> None:
        if self.hidden_state is not None:
            self.hidden_state = self.hidden_state.detach()

    @property
    def output_mean(self) -> torch.Tensor:
        return self._distribution.mean

    @property
    def output_std(self) -> torch.Tensor:
        return self._distribution.stddev

    @property
    def output_entropy(self) -> torch.Tensor:
        """Entropy summed over action dimensions, (...)."""
        return self._distribution.entropy().sum(dim=-1)

    @property
    def output_distribution_params(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(mean, std) in physical action units, each (..., A)."""
        return self._distribution.mean, self._distribution.stddev

    def get_output_log_prob(self, outputs: torch.Tensor) -> torch.Tensor:
        """Log-density of ``outputs`` summed over action dimensions, (...)."""
        return self._distribution.log_prob(outputs).sum(dim=-1)

    def get_kl_divergence(self, old_params, new_params) -> torch.Tensor:
        """KL(old || new) of two diagonal Gaussians given as (mean, std), summed over action dimensions."""
        normal = torch.distributions.Normal
        return torch.distributions.kl_divergence(normal(*old_params), normal(*new_params)).sum(dim=-1)

    def update_normalization(self, obs) -> None:
        """No-op: the WAM's normalizers are fixed (fitted on the pretraining data, or on a run's first rollout)."""

    def as_onnx(self, verbose: bool = False) -> nn.Module:
        """A deterministic copy for ONNX export (see :class:`OnnxWamPolicy`)."""
        return OnnxWamPolicy(self.wam)

    def as_jit(self) -> nn.Module:
        raise NotImplementedError(
            "the joint WAM policy exports to ONNX only (its state features are not TorchScript-able): use"
            " export_policy_to_onnx / wam export"
        )


class CascadedActor(WamActor):
    """A cascaded WAM's policy as an rsl-rl actor: its action head on the current step and the world model's
    prediction ``cascade_horizon`` steps ahead (:meth:`CascadedWAM.policy_at_last` on a one-step history).

    Its world model must be :attr:`~CascadedWAM.per_step` (an MLP trunk), which makes the actor feed-forward. The
    prediction is detached, so PPO's loss reaches the action head alone; :attr:`wam` is the world model, which
    WamPPO's world-model steps train (and through it the policy's input). There is no value head: the critic is
    rsl-rl's MLP on the ``critic`` group.
    """

    def __init__(self, cascaded: CascadedWAM) -> None:
        nn.Module.__init__(self)
        if not cascaded.per_step:
            raise ValueError(
                f"a cascaded WAM with a '{cascaded.cfg.trunk.kind}' world-model trunk cannot act inside rsl-rl (its"
                " policy reads a history): train it with model.trunk.kind=mlp"
            )
        self.cascaded = cascaded
        self.hidden_state = None
        self._distribution: torch.distributions.Normal | None = None
        self._last = None

    @property
    def wam(self):
        """The world model (a :class:`~wam_isaac.models.world_model.WorldModel`)."""
        return self.cascaded.world_model

    @property
    def model(self) -> nn.Module:
        return self.cascaded

    @property
    def is_recurrent(self) -> bool:
        return False

    def policy_parameters(self) -> list[nn.Parameter]:
        """The action head's (the world model is not the policy's: its prediction reaches the policy detached)."""
        return list(self.cascaded.action_head.parameters())

    def forward(self, obs, masks=None, hidden_state=None, stochastic_output: bool = False) -> torch.Tensor:
        """A sampled action (``stochastic_output``) or the mean action, physical units (..., A)."""
        from rsl_rl.utils import unpad_trajectories

        if masks is not None:
            obs = unpad_trajectories(obs, masks)
        self._distribution = self.cascaded.policy_per_step(*self.inputs(obs))
        return self._distribution.sample() if stochastic_output else self._distribution.mean

    def as_onnx(self, verbose: bool = False) -> nn.Module:
        """A deterministic copy for ONNX export (see :class:`OnnxCascadedPolicy`)."""
        return OnnxCascadedPolicy(self.cascaded)


class WamValue(nn.Module):
    """The joint WAM's value head as rsl-rl's critic (the shared critic): it reads the actor's trunk features.

    When rsl-rl calls it on the very observations the actor was just called on (every rollout step, every minibatch),
    it reuses the actor's features (so both losses reach the trunk through one forward); otherwise it computes them
    from the actor's current memory without advancing it (the bootstrap value of ``compute_returns``).
    Its own parameters are the value head's only; its hidden state is the actor's.
    """

    def __init__(self, actor: WamActor) -> None:
        super().__init__()
        self.value_head = actor.wam.value_head
        object.__setattr__(self, "_actor", actor)  # not a submodule: its parameters belong to the actor

    @property
    def is_recurrent(self) -> bool:
        return self._actor.is_recurrent

    def forward(self, obs, masks=None, hidden_state=None, stochastic_output: bool = False) -> torch.Tensor:
        """State values, (..., 1)."""
        features = self._actor.cached_features(obs, masks)
        if features is None:
            features = self._actor.features(obs, masks, hidden_state, advance=False)
        return self.value_head(features)

    def reset(self, dones=None, hidden_state=None) -> None:
        """No-op: the memory is the actor's, which rsl-rl resets itself."""

    def get_hidden_state(self):
        return self._actor.hidden_state

    def detach_hidden_state(self, dones=None) -> None:
        pass

    def update_normalization(self, obs) -> None:
        pass


class OnnxWamPolicy(nn.Module):
    """The joint WAM's mean action as an exportable graph.

    Inputs: ``obs`` (1, S + I + A) = the ``world_model`` group's terms (schema order), the ``instruction`` group's,
    and the previous action, concatenated; with a GRU trunk also ``h_in`` (layers, 1, E). Outputs: ``actions``
    (1, A) in physical units (the env's action, before its scale and clip), and ``h_out`` with a GRU trunk.
    """

    def __init__(self, wam: JointWAM) -> None:
        super().__init__()
        self.wam = copy.deepcopy(wam).cpu().eval()
        schema = wam.schema
        self.split = [schema.state_dim, schema.instruction_dim, schema.action_dim]
        self.recurrent = wam.cfg.trunk.kind == "gru"
        self.is_recurrent = self.recurrent

    def forward(self, obs: torch.Tensor, h_in: torch.Tensor | None = None):
        states, instruction, previous = obs.split(self.split, dim=-1)
        tokens = self.wam.tokens(states, instruction, previous)
        if not self.recurrent:
            return self.wam.policy(self.wam.encode(tokens)[0]).mean
        features, h_out = self.wam.encode(tokens[:, None], h_in)
        return self.wam.policy(features[:, 0]).mean, h_out

    def get_dummy_inputs(self) -> tuple[torch.Tensor, ...]:
        obs = torch.zeros(1, sum(self.split))
        if not self.recurrent:
            return (obs,)
        gru = self.wam.trunk.gru
        return obs, torch.zeros(gru.num_layers, 1, gru.hidden_size)

    @property
    def input_names(self) -> list[str]:
        return ["obs", "h_in"] if self.recurrent else ["obs"]

    @property
    def output_names(self) -> list[str]:
        return ["actions", "h_out"] if self.recurrent else ["actions"]


class OnnxCascadedPolicy(nn.Module):
    """A cascaded WAM's mean action (MLP world model) as an exportable graph: ``obs`` (batch, S + I + A), laid out
    as :class:`OnnxWamPolicy`'s, -> ``actions`` (batch, A) in physical units, the lookahead inside the graph."""

    is_recurrent = False
    input_names = ["obs"]
    output_names = ["actions"]

    def __init__(self, cascaded: CascadedWAM) -> None:
        super().__init__()
        self.cascaded = copy.deepcopy(cascaded).cpu().eval()
        schema = cascaded.schema
        self.split = [schema.state_dim, schema.instruction_dim, schema.action_dim]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        states, instruction, previous = (x[:, None] for x in obs.split(self.split, dim=-1))
        return self.cascaded.act(states, instruction, previous)

    def get_dummy_inputs(self) -> tuple[torch.Tensor]:
        return (torch.zeros(1, sum(self.split)),)
