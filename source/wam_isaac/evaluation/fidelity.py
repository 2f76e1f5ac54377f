"""State fidelity: how far a world model's autoregressive rollouts drift from the simulated futures.

Windows of ``H + K`` steps (``H`` = the history the model was trained with, ``K`` = the longest horizon) are cut
from the validation episodes (episodes shorter than that are skipped). The model sees the ``H`` true steps and the
``K`` logged actions, and feeds back its own predictions. The error at horizon ``k`` is the normalized RMSE of the
predicted state ``s^_{H-1+k}``: every dimension's error is divided by that dimension's standard deviation in the
training data (the model's state normalizer), so 1.0 means "as far off as a random state" (the metric of
:mod:`wam_isaac.training.metrics`, also logged during training). An ensemble is scored on its members' mean
trajectory; the mean of the members' standard deviation (same normalization) is its own uncertainty estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.schema import WamSchema
from ..models.wam import world_model_of
from ..training.metrics import forecast, horizon_errors
from ..training.sequences import SequenceTable

__all__ = ["FidelityResult", "evaluate_fidelity", "forecast", "horizon_errors", "validation_windows"]


@dataclass
class FidelityResult:
    """Rollout errors per horizon, and the trajectories they were computed on (CPU tensors)."""

    horizons: list[int]
    """Horizons [steps]."""
    windows: int
    """Windows evaluated."""
    episodes: int
    """Validation episodes long enough for a window."""
    skipped_episodes: int
    """Validation episodes shorter than ``H + max(horizons)`` steps."""
    nrmse: dict[str, list[float]]
    """``{"all": [...], "<term>": [...]}``: normalized RMSE at each horizon."""
    ensemble_std: dict[str, list[float]] | None
    """Ensembles: the members' standard deviation over the state std, averaged over windows and dimensions, at each
    horizon; ``None`` for a single model."""
    predicted: torch.Tensor
    """``s_{H-1}`` (true) then the K predicted states [physical units], (B, K + 1, S)."""
    true: torch.Tensor
    """The true states ``s_{H-1} .. s_{H-1+K}``, (B, K + 1, S)."""
    predicted_contacts: torch.Tensor
    """Predicted contact probabilities after each forecast step (the flags of ``predicted[:, 1:]``), (B, K, C)."""
    true_contacts: torch.Tensor
    """The dataset's contact flags after each forecast step (the flags of ``true[:, 1:]``), (B, K, C)."""

    def to_dict(self) -> dict:
        fields = ("horizons", "windows", "episodes", "skipped_episodes", "nrmse", "ensemble_std")
        return {name: getattr(self, name) for name in fields}


def validation_windows(
    table: SequenceTable, span: int, stride: int, max_windows: int | None
) -> tuple[torch.Tensor, int, int]:
    """Starts of windows of ``span`` steps every ``stride`` steps (at most ``max_windows``, spread evenly), the
    number of episodes that have one and the number that are too short."""
    starts = table.window_starts(span, stride)
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[torch.linspace(0, len(starts) - 1, max_windows).round().long()]
    long_enough = int((table.lengths >= span).sum())
    return starts, long_enough, len(table.lengths) - long_enough


@torch.no_grad()
def evaluate_fidelity(
    model: nn.Module,
    table: SequenceTable,
    history: int,
    horizons: list[int],
    stride: int = 8,
    max_windows: int | None = 2048,
    batch_size: int = 256,
) -> FidelityResult:
    """Roll the model's world model out on the windows of ``table`` and score every horizon.

    Args:
        model: any WAM (its world model is evaluated), on the device it should run on.
        table: the validation episodes.
        history: H, the true steps the model conditions on.
        horizons: horizons [steps]; the windows are ``H + max(horizons)`` steps long.
        stride: steps between window starts within an episode.
        max_windows: cap on the number of windows (spread evenly over all of them).
        batch_size: windows per rollout batch.

    Raises:
        ValueError: no validation episode is long enough for one window.
    """
    horizons = sorted(set(horizons))
    span = history + horizons[-1]
    starts, episodes, skipped = validation_windows(table, span, stride, max_windows)
    if not len(starts):
        raise ValueError(
            f"no validation episode has {span} steps (history {history} + horizon {horizons[-1]}); the longest has "
            f"{int(table.lengths.max(initial=0))}: use shorter --horizons"
        )
    device = next(model.parameters()).device
    predicted, true, spread, contacts, true_contacts = [], [], [], [], []
    for first in range(0, len(starts), batch_size):
        batch = table.gather(starts[first : first + batch_size], span).to(device)
        mean, std, contact = forecast(model, batch.states, batch.instruction, batch.actions, history)
        start = batch.states[:, history - 1 : history]
        predicted.append(torch.cat((start, mean), dim=1).cpu())
        true.append(batch.states[:, history - 1 :].cpu())
        contacts.append(contact.cpu())
        true_contacts.append(batch.contacts[:, history - 1 : -1].cpu())  # labels of step t describe s_{t+1}
        if std is not None:
            spread.append(std.cpu())
    predicted, true = torch.cat(predicted), torch.cat(true)
    state_std = world_model_of(model).normalizers.state.std.cpu()
    schema = table.schema
    errors = horizon_errors(predicted[:, 1:], true[:, 1:], state_std, schema, horizons)
    ensemble_std = None
    if spread:
        ensemble_std = mean_spread(torch.cat(spread) / state_std, schema, horizons)
    return FidelityResult(
        horizons,
        len(starts),
        episodes,
        skipped,
        errors,
        ensemble_std,
        predicted,
        true,
        torch.cat(contacts),
        torch.cat(true_contacts),
    )


def mean_spread(scaled_std: torch.Tensor, schema: WamSchema, horizons: list[int]) -> dict[str, list[float]]:
    """Mean of normalized member standard deviations (B, K, S) at each horizon, overall and per term."""
    at = scaled_std[:, [k - 1 for k in horizons]]
    spread = {"all": at.mean(dim=(0, 2)).tolist()}
    for term in schema.state_slices():
        spread[term.name] = at[..., term.start : term.stop].mean(dim=(0, 2)).tolist()
    return spread
