"""Fixed per-dimension normalizers fitted on the training split and stored in the model's state dict (so in every
checkpoint and every exported graph)."""

from __future__ import annotations

import torch
from torch import nn


class Normalizer(nn.Module):
    """``(x - mean) / std`` per dimension, with ``std`` floored so that constant dimensions stay finite.

    Args:
        dim: number of dimensions.
        min_std: floor of ``std`` [same unit as x]; a dimension that never varies in the data maps to 0.
    """

    def __init__(self, dim: int, min_std: float = 1.0e-4) -> None:
        super().__init__()
        self.min_std = min_std
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, values: torch.Tensor, groups: list[tuple[int, int]] | None = None) -> Normalizer:
        """Set mean and std from ``values`` of shape (N, dim); returns self. A normalizer of zero dimensions (a task
        without an instruction) has nothing to fit.

        Args:
            values: samples, (N, dim).
            groups: ``(start, stop)`` ranges of dimensions that share one scale: the root mean square of their
                standard deviations (so a nearly constant dimension is scaled like the others of its group, e.g. a
                height like the horizontal position it shares a unit with). ``None``: one scale per dimension.
        """
        dim = self.mean.numel()
        if dim == 0:
            return self
        values = values.reshape(-1, dim).double()
        if values.shape[0] == 0:
            raise ValueError("cannot fit a normalizer on zero samples")
        std = values.std(0, unbiased=False)
        for start, stop in groups or []:
            std[start:stop] = std[start:stop].square().mean().sqrt()
        self.mean.copy_(values.mean(0))
        self.std.copy_(std.clamp_min(self.min_std))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """``y * std + mean``: back to physical units."""
        return y * self.std + self.mean


class Normalizers(nn.Module):
    """Every normalizer a WAM needs.

    Attributes: ``state`` (the state's network features, F), ``delta`` (one-step state changes, D), ``instruction``
    (I), ``action`` (A), ``reward`` (1).

    Args:
        state_dim: F, the size of the state features (:attr:`StateSpace.feature_dim`).
        instruction_dim, action_dim: I, A.
        delta_dim: D, the size of a state change (:attr:`StateSpace.delta_dim`); default ``state_dim``.
    """

    def __init__(self, state_dim: int, instruction_dim: int, action_dim: int, delta_dim: int | None = None) -> None:
        super().__init__()
        self.state = Normalizer(state_dim, min_std=1.0e-3)
        self.delta = Normalizer(state_dim if delta_dim is None else delta_dim, min_std=1.0e-5)
        self.instruction = Normalizer(instruction_dim, min_std=1.0e-3)
        self.action = Normalizer(action_dim, min_std=1.0e-2)
        self.reward = Normalizer(1, min_std=1.0e-3)
