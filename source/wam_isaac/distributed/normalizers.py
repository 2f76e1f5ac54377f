"""Normalizer statistics over every rank's data, identical on every rank, without moving the data.

Each rank samples its own training episodes as :func:`~wam_isaac.training.trainer.fit_normalizers` does and runs the
model's own ``fit_normalizers`` on them, with each :class:`~wam_isaac.models.normalizer.Normalizer`'s ``fit``
intercepted so that it records its input instead of fitting. The moments of those inputs are all-reduced in float64
(count and sum, then the sum of squared deviations from the global mean: two passes, no cancellation), and every
normalizer is then fitted by its own ``fit`` on the two rows ``mean + std`` and ``mean - std``, whose mean and
population standard deviation are the global ones: its groups (one scale per state term) and floors apply unchanged.
The result equals a one-process fit on the union of the ranks' samples up to float64 rounding.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager

import torch
from torch import nn

from ..models.normalizer import Normalizer
from ..models.wam import world_model_of
from .context import DistContext


class _Recorder:
    """Stands in for one normalizer's ``fit``: keeps its inputs (float64 rows) and its groups."""

    def __init__(self) -> None:
        self.values: list[torch.Tensor] = []
        self.groups = None

    def __call__(self, values: torch.Tensor, groups=None):
        self.values.append(values.reshape(values.shape[0], -1).detach().to("cpu", torch.float64))
        self.groups = groups


def fit_normalizers_over(model: nn.Module, tables: Sequence, context: DistContext, sample) -> None:
    """Fit ``model``'s normalizers on the data of ``tables`` (this rank's) and of every other rank's tables.

    Args:
        model: the model (its world model's ``fit_normalizers`` decides what each normalizer is fitted on).
        tables: this rank's training tables (one per part of the data it holds).
        context: the job; every rank must call this with the same model structure.
        sample: ``sample(table) -> (steps, pairs)``, the windows a one-process fit would use.
    """
    world_model = world_model_of(model)
    with recorded_fits(model) as recorders:
        for table in tables:
            world_model.fit_normalizers(*sample(table))
    fit_recorded(recorders, context)


@contextmanager
def recorded_fits(model: nn.Module):
    """Within the block, every :class:`Normalizer` of ``model`` records what its ``fit`` is given instead of fitting;
    yields ``{normalizer: recorder}`` (module order) for :func:`fit_recorded`."""
    normalizers = [module for module in model.modules() if isinstance(module, Normalizer)]
    recorders = {normalizer: _Recorder() for normalizer in normalizers}
    try:
        for normalizer, recorder in recorders.items():
            normalizer.fit = recorder  # instance attribute: shadows the method
        yield recorders
    finally:
        for normalizer in normalizers:
            del normalizer.fit


def fit_recorded(recorders: dict, context: DistContext) -> None:
    """Fit each normalizer on every rank's recorded inputs (all-reduced moments; identical on every rank). A
    collective: every rank calls it with the normalizers of one architecture, in the same order."""
    for normalizer, recorder in recorders.items():
        dim = normalizer.mean.numel()
        fitted = torch.tensor([1.0 if recorder.values else 0.0], dtype=torch.float64)
        if not context.all_reduce(fitted, op="min").item() or dim == 0:
            continue  # not fitted by this model (or nothing to fit): as a one-process fit leaves it
        values = torch.cat(recorder.values) if recorder.values else torch.zeros(0, dim, dtype=torch.float64)
        first = context.all_reduce(torch.cat([torch.tensor([float(values.shape[0])]).double(), values.sum(0)]))
        count, mean = first[0], first[1:] / first[0].clamp_min(1.0)
        variance = context.all_reduce((values - mean).square().sum(0)) / count.clamp_min(1.0)
        std = variance.sqrt()
        Normalizer.fit(normalizer, torch.stack([mean + std, mean - std]), groups=recorder.groups)
