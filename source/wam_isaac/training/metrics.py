"""The rollout metrics shared by training (validation every epoch) and ``wam eval`` (fidelity): the mean forecast
of any model, and its normalized RMSE per horizon.

The error of a dimension is divided by that dimension's standard deviation in the training data (the model's state
normalizer), so 1.0 means "as far off as a random state". An ensemble is scored on its members' mean trajectory.
"""

from __future__ import annotations

import torch
from torch import nn

from ..models.schema import WamSchema
from ..models.wam import world_model_of
from ..models.world_model import EnsembleWorldModel


def horizon_errors(
    predicted: torch.Tensor, true: torch.Tensor, state_std: torch.Tensor, schema: WamSchema, horizons: list[int]
) -> dict[str, list[float]]:
    """Normalized RMSE at each horizon, overall and per state term.

    Args:
        predicted, true: forecasts (B, K, S) in physical units; step ``k - 1`` is horizon ``k``.
        state_std: per-dimension scale (S,).
        schema: the state layout.
        horizons: horizons [steps], each in ``1..K``.

    Returns:
        ``{"all": [...], "<term>": [...]}``, one value per horizon.
    """
    scaled = (predicted - true) / state_std
    at = scaled[:, [k - 1 for k in horizons]]  # (B, len(horizons), S)
    errors = {"all": at.square().mean(dim=(0, 2)).sqrt().tolist()}
    for term in schema.state_slices():
        errors[term.name] = at[..., term.start : term.stop].square().mean(dim=(0, 2)).sqrt().tolist()
    return errors


@torch.no_grad()
def forecast(model: nn.Module, states, instruction, actions, history: int):
    """Mean predicted states (B, K, S), the members' standard deviation (B, K, S) for an ensemble (else ``None``),
    and the predicted contact probabilities (B, K, C) (an ensemble's: the members' mean)."""
    world_model = world_model_of(model)
    if isinstance(world_model, EnsembleWorldModel):
        rollouts = world_model.rollout(states, instruction, actions, history)
        mean, variance = world_model.mean_and_variance(rollouts)
        contacts = torch.stack([r.predictions.contact_logits.sigmoid() for r in rollouts]).mean(0)
        return mean, variance.sqrt(), contacts
    rollout = world_model.rollout(states, instruction, actions, history)
    return rollout.states, None, rollout.predictions.contact_logits.sigmoid()
