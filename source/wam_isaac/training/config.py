"""The configuration of ``wam train-model``: typed dataclasses, overridable Hydra-style (``train.lr=3e-4``,
``model.trunk.hidden=128``, ``train.loss.action_weight=0.5``) through OmegaConf, saved resolved beside the
checkpoints as ``config.yaml``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.config import ModelCfg
from .objectives import LossCfg

PLAIN_NLL_BETA = 0.0
"""``dynamics_beta`` of a run saved without one (``wam train-model`` config, WamPPO checkpoint): runs from before
beta-NLL trained on the plain Gaussian NLL, and resume with it."""


@dataclass
class TrainCfg:
    """Optimization, windows, validation and checkpointing."""

    epochs: int = 20
    """Passes over the training windows."""
    batch_size: int = 256
    """Windows per gradient step."""
    lr: float = 1.0e-3
    """Adam learning rate at the start; cosine-annealed to ``lr * min_lr_ratio`` at the last epoch."""
    min_lr_ratio: float = 0.1
    """Final learning rate as a fraction of ``lr``."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Maximum global gradient norm."""
    history: int = 8
    """H: true steps the model conditions on [steps]."""
    forecast: int = 16
    """F: steps of the autoregressive (or teacher-forced) forecast trained on [steps]."""
    stride: int = 1
    """Steps between the starts of consecutive training windows of an episode."""
    val_fraction: float = 0.1
    """Fraction of the episodes held out for validation."""
    split: str = "env"
    """How episodes are held out: ``env`` (every episode of an env on one side, so validation envs have DR draws
    (masses, frictions, gains) no training episode saw: held-out physics) or ``episode`` (episodes at random: the
    validation episodes share their envs' DR draws with training episodes)."""
    ensemble_split: str = "none"
    """How an ensemble's members share the training windows: ``none`` (every member on every window; they differ by
    their initialization only) or ``env`` (the training envs dealt to the members, disjoint: each member sees other DR
    draws, so their spread rises where the physics differs; one process only)."""
    val_horizons: list[int] = field(default_factory=lambda: [1, 8, 32])
    """Horizons [steps] of the validation k-step rollout errors logged every epoch."""
    val_windows: int = 512
    """Validation windows evaluated per epoch (the first ones in a fixed order)."""
    seed: int = 0
    """Seed of the initialization and of the per-epoch shuffles."""
    save_every: int = 5
    """Write a checkpoint every this many epochs (and always at the end)."""
    deterministic: bool = False
    """Use deterministic algorithms only (bit-reproducible resumes; CPU)."""
    action_target: str = "executed"
    """What the action head (joint or cascaded WAM) imitates: ``executed`` (the dataset's ``actions``) or ``expert``
    (its ``expert_actions``, the scripted expert's action on every recorded state: ``wam generate --expert_labels``;
    DAgger). The world model always conditions on the executed actions."""
    loss: LossCfg = field(default_factory=LossCfg)
    """Loss weights and options. A saved config without ``loss.dynamics_beta`` (a run from before beta-NLL) loads
    with ``dynamics_beta`` 0.0 (:data:`PLAIN_NLL_BETA`), the plain NLL it trained with, not the default
    (:func:`~wam_isaac.training.run.config_from_dict`)."""


@dataclass
class TrainModelCfg:
    """Everything a ``wam train-model`` run needs."""

    data: str = "???"
    """Dataset directory (``wam generate``)."""
    out: str = "???"
    """Run directory: checkpoints, TensorBoard events, config.yaml."""
    device: str = "cpu"
    """Training device: ``cpu`` or ``cuda:N``."""
    model: ModelCfg = field(default_factory=ModelCfg)
    """The model."""
    train: TrainCfg = field(default_factory=TrainCfg)
    """The optimization."""
