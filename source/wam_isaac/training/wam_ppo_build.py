"""Building WamPPO's WAM: a joint WAM from a pretrained ``wam train-model`` checkpoint (checked against the task's
observation groups) or from scratch, or a pretrained cascaded WAM; and the env setting WamPPO needs
(``compute_final_obs``)."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

import torch

from ..cli.errors import UsageError
from ..models.config import ModelCfg, TrunkCfg
from ..models.schema import SchemaError, WamSchema
from ..models.wam import CascadedWAM, JointWAM

WAM_KEYS = (
    "world_model_weight",
    "pretrained_checkpoint",
    "shared_critic",
    "critic_warmup_iterations",
    "replay_capacity",
    "wam_model",
    "world_model",
    "imagination",
    "fine_tune_learning_rate",
    "anchor_kl_weight",
    "anchor_decay_iterations",
)
"""Algorithm-config fields that are WamPPO's own (the rest are PPO's)."""


class PretrainedCheckpointError(UsageError, SchemaError):
    """The pretrained checkpoint cannot be fine-tuned on this task (missing, not a WAM with a policy, other
    observations)."""


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


def build_wam(env_schema: WamSchema, wam_cfg: dict, device) -> JointWAM | CascadedWAM:
    """The WAM: loaded from ``pretrained_checkpoint`` (a joint or cascaded WAM, checked against the env's observation
    groups) or a new joint WAM.

    Raises:
        PretrainedCheckpointError: the checkpoint is missing, unreadable, holds no policy (a world model) or a
            cascaded WAM whose world model reads a history, or was made for other observation groups (the message
            names the first differing key).
    """
    path = wam_cfg.get("pretrained_checkpoint")
    if not path:
        return JointWAM(env_schema, scratch_model_cfg(wam_cfg.get("wam_model"))).to(device)
    model = load_pretrained(path, device)
    try:
        model.schema.check_observations_compatible(env_schema)
    except SchemaError as error:
        raise PretrainedCheckpointError(f"pretrained checkpoint '{path}' does not fit this task: {error}") from None
    if isinstance(model, JointWAM):
        rescale_value_head(model)
    return model.train()


def load_pretrained(path: str, device="cpu") -> JointWAM | CascadedWAM:
    """The joint or cascaded WAM of a ``wam train-model`` checkpoint, unchecked against any task; what a command
    calls before it starts a simulator (``wam train`` with ``agent.algorithm.pretrained_checkpoint``).

    Raises:
        PretrainedCheckpointError: the file is missing, unreadable, holds a world model alone, or a cascaded WAM
            whose world model is not per step (its policy reads a history, which rsl-rl's feed-forward storage
            cannot give it).
    """
    from .checkpoint import CheckpointError
    from .run import load_model

    if not os.path.isfile(path):
        raise PretrainedCheckpointError(f"pretrained checkpoint '{path}' does not exist (a wam train-model checkpoint)")
    try:
        model, train_cfg, _ = load_model(path, device=device)
    except CheckpointError as error:
        raise PretrainedCheckpointError(str(error)) from None
    if not isinstance(model, JointWAM | CascadedWAM):
        raise PretrainedCheckpointError(
            f"pretrained checkpoint '{path}' holds a '{train_cfg.model.kind}' model; WamPPO fine-tunes a joint or"
            " cascaded WAM (wam train-model --model joint|cascaded)"
        )
    if isinstance(model, CascadedWAM) and not model.per_step:
        raise PretrainedCheckpointError(
            f"pretrained checkpoint '{path}' holds a cascaded WAM with a '{model.cfg.trunk.kind}' world-model trunk;"
            " WamPPO fine-tunes a cascaded WAM with model.trunk.kind=mlp"
        )
    return model


def check_critic(model: JointWAM | CascadedWAM, shared_critic: bool, path: str) -> None:
    """Refuse the shared critic for a cascaded WAM (it has no value head).

    Raises:
        PretrainedCheckpointError: ``model`` is cascaded and ``shared_critic`` is set.
    """
    if isinstance(model, CascadedWAM) and shared_critic:
        raise PretrainedCheckpointError(
            f"pretrained checkpoint '{path}' holds a cascaded WAM, which has no value head: set"
            " agent.algorithm.shared_critic=false (rsl-rl's MLP critic on the 'critic' group)"
        )


@torch.no_grad()
def rescale_value_head(model: JointWAM) -> None:
    """Put a pretrained value head in the env's reward units: ``wam train-model`` regresses it on returns of
    reward / the reward normalizer's std (``objectives.value_targets``), PPO on raw returns, so its output layer is
    multiplied by that std."""
    last = model.value_head[-1]
    sigma = model.normalizers.reward.std.reshape(())
    last.weight.mul_(sigma)
    last.bias.mul_(sigma)
