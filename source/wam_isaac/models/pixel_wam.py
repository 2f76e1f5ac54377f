"""Pixel World Action Models: the pixel world model (:mod:`.pixel_world_model`) with an optional state read-out and,
for ``kind="joint"`` or ``"cascaded"``, a policy.

- **state read-out** (when the dataset has the task's ``world_model`` state group): an MLP from a step's latent and
  trunk features ``[z_t, h_t]`` to the flat state ``s_t`` (physical units after un-normalizing, quaternions
  renormalized). Trained on the true frames' latents (every step of a window) and on the latents the rollout
  imagines (the forecast steps), so :mod:`~wam_isaac.evaluation.physics` can check what the pixel model imagines.
- **joint** (:attr:`PixelWamCfg.kind` ``"joint"``): a Gaussian action head and a value head on the trunk's features
  ``h_t`` of the true frames (the latent the world model shares), trained by behaviour cloning (Gaussian NLL of the
  normalized action) and a discounted-return regression, beside the pixel world-model loss.
- **cascaded** (``"cascaded"``, as UniPi does): future frames first, then an inverse-dynamics model. A planner head
  predicts the next latent *without* the action, ``z^_{t+1} = z_t + plan(z_t, h_t)`` (what the demonstrator will
  make happen); the predicted frame ``x^_{t+1}`` is decoded from it (:meth:`PixelWorldModel.predict_frames`) and
  encoded again; the inverse-dynamics MLP maps ``(z_t, enc(x^_{t+1}) - z_t, g_t)`` to ``a_t``. Planner and inverse
  dynamics read detached latents and features (the world model learns from its own loss alone; the inverse dynamics
  is trained on true frame pairs, as UniPi's).

Shapes: frames uint8 (B, T, H, W, C); states (B, T, S); instructions (B, T, I); actions (B, T, A); rewards (B, T).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from .normalizer import Normalizer
from .pixel_world_model import PixelWorldModel, PixelWorldModelCfg
from .schema import WamSchema
from .trunks import mlp

KINDS = ("world", "joint", "cascaded")
"""Pixel model kinds: a world model (with the read-out if there are states), a joint or a cascaded WAM."""


@dataclass
class PixelWamCfg:
    """What a pixel WAM adds to the pixel world model, and the weights of its losses."""

    kind: str = "world"
    """One of :data:`KINDS`."""
    readout: bool = True
    """Add the state read-out head when the dataset has ``world_model`` states."""
    readout_weight: float = 0.1
    """Weight of the read-out's MSE (normalized state units) in the loss."""
    action_weight: float = 0.1
    """Weight of behaviour cloning (Gaussian NLL of normalized actions, mean over entries)."""
    value_weight: float = 0.01
    """Joint: weight of the value head's MSE (returns in units of the reward's std)."""
    plan_weight: float = 1.0
    """Cascaded: weight of the planner's latent MSE (per latent dimension; latents have unit variance)."""
    gamma: float = 0.95
    """Joint: discount of the value targets."""
    init_std: float = 0.5
    """Initial std of the Gaussian action heads (normalized units)."""


def gaussian_nll(mean: torch.Tensor, log_std: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean Gaussian negative log-likelihood over every entry."""
    nll = 0.5 * ((target - mean) * torch.exp(-log_std)).square() + log_std + 0.5 * math.log(2.0 * math.pi)
    return nll.mean()


class PixelWAM(PixelWorldModel):
    """The pixel world model plus the heads :class:`PixelWamCfg` asks for (module docstring).

    Args:
        cfg: the world model's sizes.
        wam: the kind and the loss weights.
        action_dim: A.
        schema: the dataset's state / instruction layout, or None for frames and actions only (no read-out, no
            instruction).
    """

    def __init__(self, cfg: PixelWorldModelCfg, wam: PixelWamCfg, action_dim: int, schema: WamSchema | None) -> None:
        if wam.kind not in KINDS:
            raise ValueError(f"unknown pixel model kind '{wam.kind}'; expected one of {', '.join(KINDS)}")
        instruction_dim = schema.instruction_dim if schema is not None else 0
        super().__init__(cfg, action_dim, instruction_dim)
        self.wam, self.schema = wam, schema
        state_dim = schema.state_dim if schema is not None and wam.readout else 0
        self.state_dim = state_dim
        self.state_norm = Normalizer(state_dim, min_std=1.0e-3)
        self.instruction_norm = Normalizer(instruction_dim, min_std=1.0e-3)
        self.action_norm = Normalizer(action_dim, min_std=1.0e-2)
        self.reward_norm = Normalizer(1, min_std=1.0e-3)
        hidden, latent, width = cfg.trunk.hidden, cfg.latent, cfg.head_hidden
        self.readout = mlp(latent + hidden, width, state_dim, layers=2) if state_dim else None
        log_std = torch.full((action_dim,), math.log(wam.init_std))
        if wam.kind == "joint":
            self.action_mean = mlp(hidden, width, action_dim, layers=2)
            self.value_head = mlp(hidden, width, 1, layers=2)
        if wam.kind == "cascaded":
            self.plan_head = mlp(latent + hidden, width, latent, layers=2)
            self.action_mean = mlp(2 * latent + instruction_dim, width, action_dim, layers=2)
        if wam.kind != "world":
            self.action_log_std = nn.Parameter(log_std)

    @property
    def acts(self) -> bool:
        """Whether the model has a policy (joint or cascaded)."""
        return self.wam.kind != "world"

    # inputs ------------------------------------------------------------------------------------------------------
    def fit_normalizers(self, states, instruction, actions, rewards) -> None:
        """Fit the normalizers on training rows: states (N, S) or None, instruction (N, I) or None, actions (N, A),
        rewards (N,) or None."""
        if self.state_dim:
            self.state_norm.fit(states)
        if self.instruction_dim:
            self.instruction_norm.fit(instruction)
        self.action_norm.fit(actions)
        if rewards is not None:
            self.reward_norm.fit(rewards[:, None])

    def instruction_input(self, instruction: torch.Tensor | None) -> torch.Tensor | None:
        """The normalized instruction the trunk reads, or None for a model without one."""
        return self.instruction_norm(instruction) if self.instruction_dim else None

    def history_features(self, latents, instruction, actions) -> torch.Tensor:
        """Trunk features (B, T, E) of true latents (B, T, L), instructions (physical) and actions ``a_t`` (B, T, A)
        (the token of step t holds ``a_{t-1}``, 0 at the window's first step)."""
        previous = torch.cat((torch.zeros_like(actions[:, :1]), actions[:, :-1]), dim=1)
        return self.trunk(self.tokens(latents, self.instruction_input(instruction), previous))[0]

    # heads -------------------------------------------------------------------------------------------------------
    def read_state(self, latents: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """States (..., S) in physical units read out of latents (..., L) and trunk features (..., E); quaternion
        terms unit length."""
        states = self.state_norm.inverse(self.readout(torch.cat((latents, features), dim=-1)))
        if self.schema is None:
            return states
        parts, last = [], 0
        for term in self.schema.quaternion_slices():
            quat = states[..., term.start : term.stop]
            parts += [states[..., last : term.start], quat / quat.norm(dim=-1, keepdim=True).clamp_min(1.0e-8)]
            last = term.stop
        return torch.cat([*parts, states[..., last:]], dim=-1)

    def _readout_error(self, latents, features, states) -> torch.Tensor:
        prediction = self.readout(torch.cat((latents, features), dim=-1))
        return nn.functional.mse_loss(prediction, self.state_norm(states))

    def policy(self, inputs: torch.Tensor) -> torch.distributions.Normal:
        """The action distribution in physical units from the action head's inputs (..., ·)."""
        mean = self.action_mean(inputs)
        std = self.action_log_std.clamp(-5.0, 1.0).exp().expand_as(mean) * self.action_norm.std
        return torch.distributions.Normal(self.action_norm.inverse(mean), std)

    def _bc(self, inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return gaussian_nll(self.action_mean(inputs), self.action_log_std.clamp(-5.0, 1.0), self.action_norm(actions))

    def idm_inputs(self, latent, next_latent, instruction) -> torch.Tensor:
        """Inverse-dynamics inputs ``[z_t, z_{t+1} - z_t, norm(g_t)]``."""
        parts = [latent, next_latent - latent]
        if self.instruction_dim:
            parts.append(self.instruction_norm(instruction))
        return torch.cat(parts, dim=-1)

    def plan(self, latents: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
        """Cascaded: the planner's next latents (..., L), no action read."""
        return latents + self.plan_head(torch.cat((latents, features), dim=-1))

    # training ----------------------------------------------------------------------------------------------------
    def wam_loss(self, batch: dict[str, torch.Tensor], history: int, ssim_weight: float = 0.0):
        """Every loss on a batch of windows (keys ``frames``, ``actions``; ``states``, ``instruction``,
        ``rewards``, ``terminal`` (B,) whether the window's last row ends its episode by termination, as the model
        needs them). ``total`` = the world-model total (:meth:`PixelWorldModel.loss`) + weighted head terms."""
        frames, actions = batch["frames"], batch["actions"]
        instruction = batch.get("instruction")
        losses, latents, predicted, rollout_features = self.frame_losses(
            frames, actions, history, ssim_weight, self.instruction_input(instruction)
        )
        total = losses["total"]
        features = (
            self.history_features(latents, instruction, actions) if self.readout is not None or self.acts else None
        )
        if self.readout is not None:
            states = batch["states"]
            seen = self._readout_error(latents, features, states)
            imagined = self._readout_error(predicted, rollout_features, states[:, history:])
            losses["readout"], losses["readout_imagined"] = seen, imagined
            total = total + self.wam.readout_weight * (seen + imagined)
        if self.wam.kind == "joint":
            losses["action"] = self._bc(features, actions)
            losses["value"] = self._value_loss(features, batch["rewards"], batch["terminal"])
            total = total + self.wam.action_weight * losses["action"] + self.wam.value_weight * losses["value"]
        if self.wam.kind == "cascaded":
            z, h = latents.detach(), features.detach()
            losses["plan"] = nn.functional.mse_loss(self.plan(z[:, :-1], h[:, :-1]), z[:, 1:])
            inputs = self.idm_inputs(z[:, :-1], z[:, 1:], None if instruction is None else instruction[:, :-1])
            losses["action"] = self._bc(inputs, actions[:, :-1])
            total = total + self.wam.plan_weight * losses["plan"] + self.wam.action_weight * losses["action"]
        losses["total"] = total
        return losses

    def _value_loss(self, features, rewards, terminal) -> torch.Tensor:
        """MSE of ``V(h_t)`` against ``r_t + gamma r_{t+1} + ... + gamma^k V(h_{T-1})`` for ``t < T - 1``, in units
        of the reward's std; at a terminated episode's last row the bootstrap is its reward alone."""
        values = self.value_head(features)[..., 0]
        scaled = rewards / self.reward_norm.std
        target = torch.where(terminal, scaled[:, -1], values[:, -1].detach())
        targets = []
        for t in range(rewards.shape[1] - 2, -1, -1):
            target = scaled[:, t] + self.wam.gamma * target
            targets.append(target)
        targets = torch.stack(targets[::-1], dim=1)
        return nn.functional.mse_loss(values[:, :-1], targets)

    # acting ------------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def act(self, frames: torch.Tensor, instruction: torch.Tensor | None, prev_actions: torch.Tensor) -> torch.Tensor:
        """Mean action (B, A) for the last step of histories: frames uint8 (B, H, h, w, C), instructions (B, H, I)
        (physical) or None, ``a_{t-1}`` of each row (B, H, A)."""
        if not self.acts:
            raise ValueError("a pixel world model has no action head (train with --model joint or cascaded)")
        latents = self.encode(frames)
        features = self.trunk(self.tokens(latents, self.instruction_input(instruction), prev_actions))[0]
        if self.wam.kind == "joint":
            return self.policy(features[:, -1]).mean
        planned = self.plan(latents[:, -1], features[:, -1])
        next_frame = self.predict_frames(frames, planned[:, None], frames.shape[1])
        next_latent = self.encode(next_frame)[:, 0]
        command = None if instruction is None else instruction[:, -1]
        return self.policy(self.idm_inputs(latents[:, -1], next_latent, command)).mean
