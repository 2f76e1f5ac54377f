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
    def fit(self, values: torch.Tensor) -> Normalizer:
        """Set mean and std from ``values`` of shape (N, dim); returns self."""
        values = values.reshape(-1, self.mean.numel()).double()
        if values.shape[0] == 0:
            raise ValueError("cannot fit a normalizer on zero samples")
        self.mean.copy_(values.mean(0))
        self.std.copy_(values.std(0, unbiased=False).clamp_min(self.min_std))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        """``y * std + mean``: back to physical units."""
        return y * self.std + self.mean


class Normalizers(nn.Module):
    """Every normalizer a WAM needs.

    Attributes: ``state`` (S), ``delta`` (S, one-step state differences), ``instruction`` (I), ``action`` (A),
    ``reward`` (1).
    """

    def __init__(self, state_dim: int, instruction_dim: int, action_dim: int) -> None:
        super().__init__()
        self.state = Normalizer(state_dim, min_std=1.0e-3)
        self.delta = Normalizer(state_dim, min_std=1.0e-5)
        self.instruction = Normalizer(instruction_dim, min_std=1.0e-3)
        self.action = Normalizer(action_dim, min_std=1.0e-2)
        self.reward = Normalizer(1, min_std=1.0e-3)
