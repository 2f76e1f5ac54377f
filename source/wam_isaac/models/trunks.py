"""Encoders over per-step tokens, all with one interface so that teacher-forced training (a whole sequence at
once) and autoregressive rollouts (one step at a time) share the code:

``features, memory = trunk(tokens, memory)`` with tokens of shape (B, T, D), features (B, T, E); ``memory`` is what
the trunk carries between calls (``None`` to start): nothing for the MLP, the hidden state for the GRU, the past
tokens for the transformer. Calling the trunk on a sequence in pieces gives the same features as calling it on the
whole sequence.
"""

from __future__ import annotations

import torch
from torch import nn

from .config import TrunkCfg


def mlp(in_dim: int, hidden: int, out_dim: int, layers: int = 2) -> nn.Sequential:
    """``layers`` hidden layers of width ``hidden`` with ELU, then a linear output."""
    modules: list[nn.Module] = []
    for index in range(layers):
        modules += [nn.Linear(in_dim if index == 0 else hidden, hidden), nn.ELU()]
    modules.append(nn.Linear(hidden if layers else in_dim, out_dim))
    return nn.Sequential(*modules)


class MLPTrunk(nn.Module):
    """Features of each step from that step's token alone (the one-step baseline)."""

    def __init__(self, token_dim: int, cfg: TrunkCfg) -> None:
        super().__init__()
        self.net = nn.Sequential(mlp(token_dim, cfg.hidden, cfg.hidden, cfg.layers), nn.ELU())

    def forward(self, tokens: torch.Tensor, memory=None):
        return self.net(tokens), None


class GRUTrunk(nn.Module):
    """A linear+ELU input layer, then a GRU; the memory is the GRU's hidden state (layers, B, E)."""

    def __init__(self, token_dim: int, cfg: TrunkCfg) -> None:
        super().__init__()
        self.input = nn.Sequential(nn.Linear(token_dim, cfg.hidden), nn.ELU())
        self.gru = nn.GRU(cfg.hidden, cfg.hidden, num_layers=max(1, cfg.layers - 1), batch_first=True)

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor | None = None):
        features, hidden = self.gru(self.input(tokens), memory)
        return features, hidden


class TransformerTrunk(nn.Module):
    """A causal transformer encoder over the last ``context`` tokens; the memory is the tokens seen so far.

    Positions are learned and relative to the first token of the (truncated) sequence, so a step's features depend
    on the tokens before it within the context only.
    """

    def __init__(self, token_dim: int, cfg: TrunkCfg) -> None:
        super().__init__()
        self.context = cfg.context
        self.input = nn.Linear(token_dim, cfg.hidden)
        self.position = nn.Parameter(torch.zeros(cfg.context, cfg.hidden))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            cfg.hidden, cfg.heads, dim_feedforward=2 * cfg.hidden, dropout=0.0, batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, cfg.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(cfg.hidden)

    def forward(self, tokens: torch.Tensor, memory: torch.Tensor | None = None):
        sequence = tokens if memory is None else torch.cat((memory, tokens), dim=1)
        sequence = sequence[:, -self.context :]
        new = tokens.shape[1]
        if new > self.context:
            raise ValueError(f"{new} new tokens exceed the transformer's context of {self.context}")
        length = sequence.shape[1]
        mask = torch.triu(torch.full((length, length), float("-inf"), device=tokens.device), diagonal=1)
        hidden = self.input(sequence) + self.position[:length]
        features = self.norm(self.encoder(hidden, mask=mask))
        return features[:, -new:], sequence


def make_trunk(token_dim: int, cfg: TrunkCfg) -> nn.Module:
    """The trunk ``cfg.kind`` names."""
    trunks = {"mlp": MLPTrunk, "gru": GRUTrunk, "transformer": TransformerTrunk}
    if cfg.kind not in trunks:
        raise ValueError(f"unknown trunk '{cfg.kind}'; expected one of {sorted(trunks)}")
    return trunks[cfg.kind](token_dim, cfg)
