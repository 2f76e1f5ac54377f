"""State fidelity: how far a world model's autoregressive rollouts drift from the simulated futures, in physical
units, beside the copy-last and constant-velocity baselines on the same windows.

Windows of ``H + K`` steps (``H`` = the history the model was trained with, ``K`` = the longest horizon) are cut
from the validation episodes (episodes shorter than that are skipped). The model sees the ``H`` true steps and the
``K`` logged actions, and feeds back its own predictions; the baselines see the same true steps. The figures
(:mod:`wam_isaac.training.metrics`, also logged during training): per state term and horizon, the error in physical
units (position [m], rotation angle [rad], velocities, joints), a normalized error (over the term's typical one-step
change) and the ratio model / copy-last, the headline. An ensemble is scored on its members' mean trajectory; the
members' spread around it (same units) is its own uncertainty estimate.

A rotation term's angle is also split into yaw (the turn about the world's up axis) and tilt (about horizontal axes,
:func:`~wam_isaac.models.rotations.yaw_tilt_angles`), each an RMS over windows per predictor and horizon: a pushed
cube turns about the table's normal and barely tilts, a walking base both, and the two have different causes.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..models.rotations import yaw_tilt_angles
from ..models.schema import WamSchema
from ..training.metrics import BASELINES, baseline_forecasts, ensemble_spread, fidelity_table, forecast, is_rotation
from ..training.sequences import SequenceTable

__all__ = ["FidelityResult", "evaluate_fidelity", "forecast", "rotation_split", "validation_windows"]


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
    table: dict[str, dict]
    """:func:`~wam_isaac.training.metrics.fidelity_table` of the model and the baselines: ``units``, ``scale``,
    ``error``, ``normalized`` and ``ratio``, each ``{predictor: {term: [per horizon]}}``."""
    ensemble_spread: dict[str, list[float]] | None
    """Ensembles: the members' spread around their mean per term and horizon (physical units, as the errors);
    ``None`` for a single model."""
    predicted: torch.Tensor
    """``s_{H-1}`` (true) then the K predicted states [physical units], (B, K + 1, S)."""
    true: torch.Tensor
    """The true states ``s_{H-1} .. s_{H-1+K}``, (B, K + 1, S)."""
    baselines: dict[str, torch.Tensor]
    """The baselines' forecasts ``s_{H-1}`` (true) then K states, each (B, K + 1, S)."""
    predicted_contacts: torch.Tensor
    """Predicted contact probabilities after each forecast step (the flags of ``predicted[:, 1:]``), (B, K, C)."""
    true_contacts: torch.Tensor
    """The dataset's contact flags after each forecast step (the flags of ``true[:, 1:]``), (B, K, C)."""
    rotation_split: dict[str, dict[str, dict[str, list[float]]]] | None = None
    """Per rotation term, its angle error split into ``yaw`` and ``tilt`` [rad]: ``{term: {"yaw" | "tilt":
    {predictor: [per horizon]}}}`` (:func:`rotation_split`); empty without rotation terms."""

    @property
    def headline(self) -> dict[str, list[float]]:
        """Model error / copy-last error per term (and their geometric mean, ``all``) at each horizon."""
        return self.table["ratio"]["model"]

    def to_dict(self) -> dict:
        return {
            "horizons": self.horizons,
            "windows": self.windows,
            "episodes": self.episodes,
            "skipped_episodes": self.skipped_episodes,
            "headline": "ratio of the model's error to copy-last's (below 1: better than predicting no motion)",
            "model_over_copy_last": self.headline,
            **self.table,
            "ensemble_spread": self.ensemble_spread,
            "rotation_split": self.rotation_split,
        }


def validation_windows(
    table: SequenceTable, span: int, stride: int, max_windows: int | None
) -> tuple[torch.Tensor, int, int]:
    """Starts of windows of ``span`` steps every ``stride`` steps (at most ``max_windows``, spread evenly), the
    number of episodes that have one and the number that are too short."""
    starts = table.window_starts(span, stride)
    if max_windows is not None and len(starts) > max_windows:
        starts = starts[torch.linspace(0, len(starts) - 1, max_windows).round().long()]
    long_enough = int((table.rows_per_episode >= span).sum())  # a window may end on the final row (s_T)
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
    predicted, true, members, contacts, true_contacts = [], [], [], [], []
    baselines: dict[str, list[torch.Tensor]] = {name: [] for name in BASELINES}
    for first in range(0, len(starts), batch_size):
        batch = table.gather(starts[first : first + batch_size], span).to(device)
        mean, member_states, contact = forecast(
            model, batch.states, batch.instruction, batch.actions, history, batch.action_before
        )
        start = batch.states[:, history - 1 : history]
        predicted.append(torch.cat((start, mean), dim=1).cpu())
        true.append(batch.states[:, history - 1 :].cpu())
        for name, states in baseline_forecasts(batch.states, history, table.schema).items():
            baselines[name].append(torch.cat((start, states), dim=1).cpu())
        contacts.append(contact.cpu())
        true_contacts.append(batch.contacts[:, history - 1 : -1].cpu())  # labels of step t describe s_{t+1}
        if member_states is not None:
            members.append(member_states.cpu())
    predicted, true = torch.cat(predicted), torch.cat(true)
    baseline_states = {name: torch.cat(parts) for name, parts in baselines.items()}
    schema = table.schema
    forecasts = {"model": predicted[:, 1:], **{name: states[:, 1:] for name, states in baseline_states.items()}}
    figures = fidelity_table(true[:, 0], true[:, 1:], forecasts, schema, horizons)
    spread = ensemble_spread(torch.cat(members, dim=1), predicted[:, 1:], schema, horizons) if members else None
    return FidelityResult(
        horizons,
        len(starts),
        episodes,
        skipped,
        figures,
        spread,
        predicted,
        true,
        baseline_states,
        torch.cat(contacts),
        torch.cat(true_contacts),
        rotation_split(true[:, 1:], forecasts, schema, horizons),
    )


def rotation_split(
    true: torch.Tensor, predictions: dict[str, torch.Tensor], schema: WamSchema, horizons: list[int]
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Yaw and tilt errors [rad] of every rotation term: the RMS over windows of
    :func:`~wam_isaac.models.rotations.yaw_tilt_angles` between each predictor's states and the true ones.

    Args:
        true: the true states ``s_H .. s_{H+K-1}``, (B, K, S).
        predictions: ``{predictor: (B, K, S)}``.
        schema: the state layout.
        horizons: horizons [steps], each in ``1..K``.

    Returns:
        ``{term: {"yaw" | "tilt": {predictor: [per horizon]}}}``.
    """
    at = [k - 1 for k in horizons]
    split = {}
    for term in schema.state_slices():
        if not is_rotation(term):
            continue
        parts: dict[str, dict[str, list[float]]] = {"yaw": {}, "tilt": {}}
        for predictor, states in predictions.items():
            q = slice(term.start, term.stop)
            yaw, tilt = yaw_tilt_angles(true[:, at, q], states[:, at, q])
            parts["yaw"][predictor] = yaw.double().square().mean(0).sqrt().tolist()
            parts["tilt"][predictor] = tilt.double().square().mean(0).sqrt().tolist()
        split[term.name] = parts
    return split
