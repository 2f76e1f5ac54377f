"""The rollout metrics shared by training (validation every epoch) and ``wam eval`` (fidelity): the mean forecast of
any model, the copy-last and constant-velocity baselines, and errors per state term in physical units.

The error of a state term at horizon ``k`` is the root mean square over windows of one magnitude per window:

- a quaternion term (``*quat``): the geodesic angle between the predicted and the true rotation [rad];
- a joint term (``joint_*``): the root mean square over its joints [rad or m, rad/s or m/s];
- any other term (a position, a linear or angular velocity): the Euclidean norm of the error vector [m, m/s, rad/s].

Beside it, two unit-free figures that a nearly constant dimension cannot dominate (each term is one number):

- ``normalized``: the error over the term's typical one-step change in the same windows (the copy-last error at
  horizon 1, the root mean square of ``|s_{t+1} - s_t|``); ``all`` averages the terms;
- ``ratio``: the error over the copy-last error at the same horizon (below 1: better than assuming nothing moves);
  ``all`` is the geometric mean over the terms. The headline figure.

An ensemble is scored on its members' mean trajectory; its spread is the root mean square, over members and windows,
of each member's distance (same magnitudes) from that mean.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..models.rotations import quat_angle
from ..models.schema import TermSlice, WamSchema
from ..models.state_space import StateSpace
from ..models.wam import world_model_of
from ..models.world_model import EnsembleWorldModel

BASELINES = ("copy_last", "constant_velocity")
"""Predictors every model is compared with: the last true state held, and the last true step's motion continued."""


def is_rotation(term: TermSlice) -> bool:
    return term.name.endswith("quat") and term.size == 4


def term_unit(name: str) -> str:
    """The unit of a state term's error, from its name."""
    if name.endswith("quat"):
        return "rad"
    if name == "joint_pos":
        return "rad (m for prismatic joints)"
    if name == "joint_vel":
        return "rad/s (m/s for prismatic joints)"
    if name.endswith("ang_vel"):
        return "rad/s"
    if name.endswith("vel"):
        return "m/s"
    if name.endswith("pos"):
        return "m"
    return "state units"


def error_magnitudes(predicted: torch.Tensor, true: torch.Tensor, schema: WamSchema) -> dict[str, torch.Tensor]:
    """The error magnitude of every state term (see the module docstring) between states (..., S): ``{term: (...)}``
    in physical units."""
    magnitudes = {}
    for term in schema.state_slices():
        p, t = predicted[..., term.start : term.stop], true[..., term.start : term.stop]
        if is_rotation(term):
            magnitudes[term.name] = quat_angle(p, t)
        elif term.name.startswith("joint_"):
            magnitudes[term.name] = (p - t).square().mean(-1).sqrt()
        else:
            magnitudes[term.name] = (p - t).norm(dim=-1)
    return magnitudes


def _rms(values: torch.Tensor, dims) -> list[float]:
    return values.double().square().mean(dim=dims).sqrt().tolist()


def baseline_forecasts(states: torch.Tensor, history: int, schema: WamSchema) -> dict[str, torch.Tensor]:
    """The baselines' forecasts (B, K, S) of windows of true states (B, H + K, S) from step ``H - 1`` on.

    - ``copy_last``: ``s_{H-1}`` at every horizon;
    - ``constant_velocity``: every position-like term (positions, joint angles, orientations) continues the last
      true step's change ``s_{H-1} - s_{H-2}`` (rotations composed as rotation vectors), velocity terms (``*vel``)
      are held; with one history step it is copy-last.
    """
    forecast = states.shape[1] - history
    last = states[:, history - 1]
    copy_last = last[:, None].expand(-1, forecast, -1)
    if history < 2:
        return {"copy_last": copy_last, "constant_velocity": copy_last}
    space = StateSpace(schema, "rotvec")
    step = space.difference(states[:, history - 2], last)
    for layout in space.layouts:
        if layout.term.name.endswith("vel"):
            step[:, layout.delta] = 0.0
    predicted, state = [], last
    for _ in range(forecast):
        state = space.compose(state, step)
        predicted.append(state)
    return {"copy_last": copy_last, "constant_velocity": torch.stack(predicted, 1)}


def fidelity_table(
    start: torch.Tensor,
    true: torch.Tensor,
    predictions: dict[str, torch.Tensor],
    schema: WamSchema,
    horizons: list[int],
) -> dict[str, dict]:
    """Errors of several predictors on the same windows, per term and horizon.

    Args:
        start: the last true state of every window ``s_{H-1}``, (B, S).
        true: the true states ``s_H .. s_{H+K-1}``, (B, K, S).
        predictions: ``{predictor: (B, K, S)}``; must include ``copy_last`` for the ratios.
        schema: the state layout.
        horizons: horizons [steps], each in ``1..K``.

    Returns:
        ``{"units": {term: unit}, "scale": {term: one-step change}, "error": {predictor: {term: [per horizon]}},
        "normalized": {predictor: {"all" | term: [...]}}, "ratio": {predictor: {"all" | term: [...]}}}``.
    """
    at = [k - 1 for k in horizons]
    names = [term.name for term in schema.state_slices()]
    scale = {
        name: _rms(value, 0)[0] if value.numel() else math.nan
        for name, value in error_magnitudes(start[:, None], true[:, :1], schema).items()
    }
    error = {
        predictor: {name: _rms(value[:, at], 0) for name, value in error_magnitudes(states, true, schema).items()}
        for predictor, states in predictions.items()
    }
    normalized, ratio = {}, {}
    for predictor, terms in error.items():
        normalized[predictor] = {name: [e / max(scale[name], 1e-12) for e in terms[name]] for name in names}
        normalized[predictor] = {"all": _mean_over_terms(normalized[predictor], len(at)), **normalized[predictor]}
        if "copy_last" in error:
            base = error["copy_last"]
            ratio[predictor] = {
                name: [e / max(b, 1e-12) for e, b in zip(terms[name], base[name], strict=True)] for name in names
            }
            ratio[predictor] = {"all": _geometric_mean_over_terms(ratio[predictor], len(at)), **ratio[predictor]}
    return {
        "units": {name: term_unit(name) for name in names},
        "scale": scale,
        "error": error,
        "normalized": normalized,
        "ratio": ratio,
    }


def _mean_over_terms(values: dict[str, list[float]], count: int) -> list[float]:
    return [sum(v[i] for v in values.values()) / len(values) for i in range(count)]


def _geometric_mean_over_terms(values: dict[str, list[float]], count: int) -> list[float]:
    return [math.exp(sum(math.log(max(v[i], 1e-12)) for v in values.values()) / len(values)) for i in range(count)]


def ensemble_spread(
    members: torch.Tensor, mean: torch.Tensor, schema: WamSchema, horizons: list[int]
) -> dict[str, list[float]]:
    """Root mean square over members and windows of each member's distance from the mean trajectory, per term
    (physical units) at each horizon. ``members`` (M, B, K, S), ``mean`` (B, K, S)."""
    at = [k - 1 for k in horizons]
    distances = error_magnitudes(members[:, :, at], mean[None, :, at].expand_as(members[:, :, at]), schema)
    return {name: _rms(value, (0, 1)) for name, value in distances.items()}


@torch.no_grad()
def forecast(model: nn.Module, states, instruction, actions, history: int, before=None):
    """Mean predicted states (B, K, S), the members' predicted states (M, B, K, S) for an ensemble (else ``None``),
    and the predicted contact probabilities (B, K, C) (an ensemble's: the members' mean); ``before`` (B, A): the action
    taken before the windows' first step (default zeros)."""
    world_model = world_model_of(model)
    if isinstance(world_model, EnsembleWorldModel):
        rollouts = world_model.rollout(states, instruction, actions, history, before=before)
        mean = world_model.mean_state(rollouts)
        contacts = torch.stack([r.predictions.contact_logits.sigmoid() for r in rollouts]).mean(0)
        return mean, torch.stack([r.states for r in rollouts]), contacts
    rollout = world_model.rollout(states, instruction, actions, history, before=before)
    return rollout.states, None, rollout.predictions.contact_logits.sigmoid()
