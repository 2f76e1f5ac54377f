"""Typed configurations of the WAM models (dataclasses; OmegaConf turns them into Hydra-style overridable configs)."""

from __future__ import annotations

from dataclasses import dataclass, field

MODEL_KINDS = ("mlp", "gru", "transformer", "joint", "cascaded")
"""What ``--model`` accepts: three dynamics models (world model only), the joint WAM and the cascaded WAM."""
TRUNKS = ("mlp", "gru", "transformer")


@dataclass
class TrunkCfg:
    """The encoder over the per-step tokens (normalized state, instruction, previous action)."""

    kind: str = "gru"
    """``mlp`` (one step, no history), ``gru`` (recurrent over the history) or ``transformer`` (causal attention)."""
    hidden: int = 256
    """Width of the hidden layers and of the features the heads read."""
    layers: int = 2
    """MLP: hidden layers; GRU: stacked GRU layers after an input layer; transformer: encoder layers."""
    heads: int = 4
    """Transformer: attention heads."""
    context: int = 96
    """Transformer: the longest token sequence it attends over [steps] (history + forecast)."""


@dataclass
class ModelCfg:
    """A WAM: which kind, its trunk, its heads, the ensemble size."""

    kind: str = "gru"
    """One of :data:`MODEL_KINDS`."""
    trunk: TrunkCfg = field(default_factory=TrunkCfg)
    """The shared encoder (for ``cascaded``: the world model's encoder; its policy is an MLP). Use
    :func:`model_cfg` to get the trunk that matches a kind."""
    head_hidden: int = 256
    """Width of the heads' hidden layer."""
    ensemble: int = 1
    """Number of world-model members (K); > 1 gives an epistemic uncertainty (dynamics models only)."""
    min_log_std: float = -5.0
    """Lower bound of the predicted log standard deviations (normalized units)."""
    max_log_std: float = 1.0
    """Upper bound of the predicted log standard deviations (normalized units)."""
    cascade_horizon: int = 8
    """Cascaded WAM: how many steps ahead [steps] the world model's prediction given to the policy looks."""
    policy_hidden: int = 256
    """Cascaded WAM: width of the policy MLP's two hidden layers."""
    rotation: str = "rotvec"
    """How quaternion terms are predicted: ``rotvec`` (rotation-vector changes composed onto the previous
    orientation; inputs as rotation-matrix columns: no jump when a stored quaternion flips sign) or ``raw`` (plain
    differences of the stored numbers, renormalized: the representation before, kept for comparison)."""
    delta_scale: str = "term"
    """Scale of the normalized state changes (the dynamics targets, one-step and forecast): ``term`` (one scale per
    state term, the root mean square of its dimensions' one-step spreads: a millimetre of height error weighs like a
    millimetre of horizontal error) or ``dim`` (each dimension's own one-step spread: a nearly constant dimension's
    drift becomes tens of spreads and dominates the loss; the scaling before, kept for comparison)."""

    @property
    def has_policy(self) -> bool:
        """Whether the model has an action head (joint and cascaded WAMs)."""
        return self.kind in ("joint", "cascaded")


def model_cfg(kind: str, **fields) -> ModelCfg:
    """The configuration of a ``kind`` model with its matching trunk: an MLP trunk for ``mlp``, a transformer for
    ``transformer``, a GRU otherwise (joint and cascaded WAMs are history-conditioned)."""
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind '{kind}'; expected one of {', '.join(MODEL_KINDS)}")
    trunk = fields.pop("trunk", None) or TrunkCfg(kind=kind if kind in TRUNKS else "gru")
    return ModelCfg(kind=kind, trunk=trunk, **fields)
