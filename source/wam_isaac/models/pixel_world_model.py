"""A pixel-space world model: camera frames are encoded to a latent, the latent is rolled forward by one of the WAM
trunks (:mod:`wam_isaac.models.trunks`, the encoder the joint WAM shares between its heads) conditioned on the
actions, and decoded back to frames.

Step ``t`` holds the frame ``x_t`` and the action ``a_t`` taken there. The token of step ``t`` is
``[z_t, g_t, a_{t-1}]`` with ``z_t = encode(x_t)`` and ``g_t`` the (normalized) instruction, if the task has one;
the trunk turns tokens into features ``h_t``; the latent head predicts ``z_{t+1} = z_t + head(h_t, a_t)``;
``decode(z)`` is the frame. A rollout feeds its own predicted latents back as the
next tokens (autoregressive in latent space), so training on rollouts teaches the model to live with its errors.

Predicted frames are the last seen frame plus the decoded change, gated:
``x_last + m * (decode(z_hat) - decode(z_last))`` (clamped to [0, 1], :meth:`PixelWorldModel.predict_frames`): what
the decoder gets wrong alike in both (the static table, at first everything) cancels, so an untrained model starts as
the copy-last-frame baseline and learns what moves. The gate ``m`` in [0, 1] (``change_gate``, a coarse
``gate_side`` x ``gate_side`` map upsampled bilinearly) is a separate head on the two latents, trained by binary
cross-entropy to say where the true frame differs from the last seen one by more than ``gate_threshold``: the decoded
change the decoder leaks into the static background (which costs SSIM on the flat render, though hardly any squared
error) is gated off there.

Shapes: frames uint8 (B, T, H, W, C) as stored in datasets (``obs/camera``), or float in [0, 1] (B, T, C, H, W);
latents (B, T, L); actions (B, T, A).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from .config import TrunkCfg
from .trunks import make_trunk, mlp


@dataclass
class PixelWorldModelCfg:
    """Sizes of the pixel world model."""

    image_size: int = 64
    """Width and height of the (square) frames [px]; a multiple of 2 ** len(channels)."""
    image_channels: int = 3
    """Channels of a frame: 3 for RGB."""
    channels: tuple[int, ...] = (32, 64, 96, 128)
    """Output channels of the encoder's stride-2 convolutions (the decoder mirrors them)."""
    latent: int = 128
    """Size of the latent a frame is encoded to."""
    trunk: TrunkCfg = field(default_factory=lambda: TrunkCfg(kind="gru", hidden=128, layers=2))
    """The recurrent encoder over the latent tokens (a GRU as in the joint WAM)."""
    head_hidden: int = 128
    """Width of the latent head's hidden layers."""
    change_gate: bool = True
    """Gate the decoded change by a predicted map of where the frame changes (off: the whole change is added)."""
    gate_side: int = 16
    """Resolution of the gate map [cells per side]; ``image_size`` must be a multiple of it."""
    gate_threshold: float = 4.0 / 255.0
    """A pixel changed if one of its channels moved by more than this since the last seen frame [0-1 units]."""
    gate_weight: float = 0.01
    """Weight of the gate's binary cross-entropy in the loss (its head reads detached latents: it shapes nothing
    else)."""
    ungated_weight: float = 0.0
    """Weight of the squared error of the ungated prediction (the whole decoded change added) in the loss: keeps the
    decoded change trained where the gate is shut (0: only the gated prediction is trained)."""


def to_float_frames(frames: torch.Tensor) -> torch.Tensor:
    """uint8 frames (..., H, W, C) as float (..., C, H, W) in [0, 1]; float frames are returned as they are."""
    if frames.dtype != torch.uint8:
        return frames
    return frames.movedim(-1, -3).float() / 255.0


class FrameEncoder(nn.Module):
    """Frames (N, C, H, W) in [0, 1] -> latents (N, L): stride-2 convolutions with ELU, a linear layer, and a layer
    norm without parameters (each latent has zero mean and unit variance over its L entries)."""

    def __init__(self, cfg: PixelWorldModelCfg) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        previous = cfg.image_channels
        for width in cfg.channels:
            layers += [nn.Conv2d(previous, width, 4, stride=2, padding=1), nn.ELU()]
            previous = width
        self.convs = nn.Sequential(*layers)
        side = cfg.image_size // 2 ** len(cfg.channels)
        self.out = nn.Linear(previous * side * side, cfg.latent)
        # a latent of fixed scale: without it the encoder can shrink or grow latents at will, which makes the
        # latent-consistency loss meaningless (and grew it without bound in a first overfitting run)
        self.norm = nn.LayerNorm(cfg.latent, elementwise_affine=False)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return self.norm(self.out(self.convs(frames - 0.5).flatten(1)))


class FrameDecoder(nn.Module):
    """Latents (N, L) -> frames (N, C, H, W) in [0, 1]: a linear layer, transposed convolutions, a sigmoid."""

    def __init__(self, cfg: PixelWorldModelCfg) -> None:
        super().__init__()
        self.side = cfg.image_size // 2 ** len(cfg.channels)
        widths = list(reversed(cfg.channels))
        self.first = widths[0]
        self.input = nn.Linear(cfg.latent, widths[0] * self.side * self.side)
        layers: list[nn.Module] = []
        for index, width in enumerate(widths):
            last = index == len(widths) - 1
            out = cfg.image_channels if last else widths[index + 1]
            layers.append(nn.ConvTranspose2d(width, out, 4, stride=2, padding=1))
            if not last:
                layers.append(nn.ELU())
        self.deconvs = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        hidden = nn.functional.elu(self.input(latents)).view(-1, self.first, self.side, self.side)
        return torch.sigmoid(self.deconvs(hidden))


class ChangeGate(nn.Module):
    """Where a predicted frame differs from the last seen one: latents (N, L) of both -> a map (N, 1, H, W) in
    [0, 1] (logits on a ``gate_side`` grid, upsampled bilinearly)."""

    def __init__(self, cfg: PixelWorldModelCfg) -> None:
        super().__init__()
        if cfg.image_size % cfg.gate_side:
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of gate_side {cfg.gate_side}")
        self.side, self.size = cfg.gate_side, cfg.image_size
        self.net = mlp(2 * cfg.latent, cfg.head_hidden, cfg.gate_side**2, layers=2)

    def logits(self, predicted: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        """Logits (N, 1, side, side) of the coarse map."""
        return self.net(torch.cat((predicted, predicted - last), dim=-1)).view(-1, 1, self.side, self.side)

    def forward(self, predicted: torch.Tensor, last: torch.Tensor) -> torch.Tensor:
        coarse = torch.sigmoid(self.logits(predicted, last))
        return nn.functional.interpolate(coarse, size=(self.size, self.size), mode="bilinear", align_corners=False)


def changed_cells(target: torch.Tensor, last: torch.Tensor, side: int, threshold: float) -> torch.Tensor:
    """1 where any pixel of a ``side`` x ``side`` grid cell moved by more than ``threshold`` in any channel between
    frames ``last`` and ``target`` (N, C, H, W) in [0, 1], else 0; (N, 1, side, side)."""
    moved = ((target - last).abs().amax(dim=1, keepdim=True) > threshold).float()
    return nn.functional.adaptive_max_pool2d(moved, side)


class PixelWorldModel(nn.Module):
    """Frame encoder, latent dynamics on a WAM trunk, frame decoder (see the module docstring).

    Args:
        cfg: sizes.
        action_dim: size of an action (A).
        instruction_dim: size of the instruction in the tokens (I; 0: none).
    """

    def __init__(self, cfg: PixelWorldModelCfg, action_dim: int, instruction_dim: int = 0) -> None:
        super().__init__()
        if cfg.image_size % 2 ** len(cfg.channels):
            raise ValueError(f"image_size {cfg.image_size} is not a multiple of 2 ** {len(cfg.channels)} (the convs)")
        self.cfg, self.action_dim, self.instruction_dim = cfg, action_dim, instruction_dim
        self.encoder = FrameEncoder(cfg)
        self.decoder = FrameDecoder(cfg)
        self.trunk = make_trunk(cfg.latent + instruction_dim + action_dim, cfg.trunk)
        self.latent_head = mlp(cfg.trunk.hidden + action_dim, cfg.head_hidden, cfg.latent, layers=2)
        self.gate = ChangeGate(cfg) if cfg.change_gate else None

    def tokens(self, latents: torch.Tensor, instruction: torch.Tensor | None, prev_actions: torch.Tensor):
        """Trunk tokens (B, T, L + I + A) of latents (B, T, L), instructions (B, T, I) or None, ``a_{t-1}``."""
        if self.instruction_dim == 0:
            return torch.cat((latents, prev_actions), dim=-1)
        if instruction is None or instruction.shape[-1] != self.instruction_dim:
            raise ValueError(f"the model reads an instruction of {self.instruction_dim} numbers")
        return torch.cat((latents, instruction, prev_actions), dim=-1)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Latents (B, T, L) of frames (B, T, H, W, C) uint8 or (B, T, C, H, W) float."""
        frames = to_float_frames(frames)
        batch, steps = frames.shape[:2]
        return self.encoder(frames.flatten(0, 1)).view(batch, steps, -1)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Frames (B, T, C, H, W) in [0, 1] of latents (B, T, L)."""
        batch, steps = latents.shape[:2]
        frames = self.decoder(latents.flatten(0, 1))
        return frames.view(batch, steps, *frames.shape[1:])

    def predict_next(self, latent: torch.Tensor, features: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """The next latent (B, L) from the current latent, the trunk's features (B, E) and the action (B, A)."""
        return latent + self.latent_head(torch.cat((features, action), dim=-1))

    def rollout(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        history: int,
        forecast: int,
        instruction: torch.Tensor | None = None,
        latents: torch.Tensor | None = None,
        with_features: bool = False,
    ):
        """Predicted latents of ``x_H .. x_{H+F-1}`` (B, F, L), autoregressively from the first ``history`` frames.

        Args:
            frames: (B, >= H, ...) frames; only the first ``history`` are read (not at all if ``latents`` is given).
            actions: (B, >= H + F - 1, A): the prediction of ``x_{H+f}`` uses ``a_{H+f-1}``.
            history: H >= 1, the frames the model conditions on.
            forecast: F >= 1, the steps it predicts.
            instruction: (B, >= H + F - 1, I), normalized, for a model that reads one (the true instruction of each
                step: a command known in advance).
            latents: (B, >= H, L), the history frames' latents if already encoded.
            with_features: also return the trunk's features (B, F, E) after it read each predicted latent.
        """
        latents = self.encode(frames[:, :history]) if latents is None else latents[:, :history]
        previous = torch.cat((torch.zeros_like(actions[:, :1]), actions[:, : history - 1]), dim=1)
        known = None if instruction is None else instruction[:, :history]
        features, memory = self.trunk(self.tokens(latents, known, previous))
        feature, latent = features[:, -1], latents[:, -1]
        predicted, after = [], []
        for f in range(forecast):
            t = history - 1 + f
            latent = self.predict_next(latent, feature, actions[:, t])
            predicted.append(latent)
            if f + 1 < forecast or with_features:
                command = None if instruction is None else instruction[:, min(t + 1, instruction.shape[1] - 1), None]
                token = self.tokens(latent[:, None], command, actions[:, t, None])
                feature_seq, memory = self.trunk(token, memory)
                feature = feature_seq[:, 0]
                after.append(feature)
        predicted = torch.stack(predicted, dim=1)
        return (predicted, torch.stack(after, dim=1)) if with_features else predicted

    def predict_frames(
        self, frames: torch.Tensor, latents: torch.Tensor, history: int, with_gate: bool = False
    ) -> torch.Tensor:
        """Frames (B, F, C, H, W) in [0, 1] of predicted latents (B, F, L) after the ``history`` frames of ``frames``:
        the last seen frame plus the decoded change from its latent, gated (module docstring). ``with_gate``: also
        the gate's coarse logits (B, F, 1, side, side), or None without a gate, and the ungated prediction."""
        seen = to_float_frames(frames[:, history - 1 : history])
        seen_latent = self.encode(seen)
        change = self.decode(latents) - self.decode(seen_latent)
        ungated = (seen + change).clamp(0.0, 1.0)
        logits = None
        if self.gate is not None:
            batch, steps = latents.shape[:2]
            last = seen_latent.expand_as(latents).detach()
            logits = self.gate.logits(latents.detach().flatten(0, 1), last.flatten(0, 1))
            size = (self.cfg.image_size, self.cfg.image_size)
            gate = nn.functional.interpolate(torch.sigmoid(logits), size=size, mode="bilinear", align_corners=False)
            change = change * gate.view(batch, steps, 1, *size)
            logits = logits.view(batch, steps, *logits.shape[1:])
        predicted = (seen + change).clamp(0.0, 1.0)
        return (predicted, logits, ungated) if with_gate else predicted

    def gate_loss(self, logits: torch.Tensor | None, target: torch.Tensor, seen: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of the gate's logits (B, F, 1, s, s) against where the true frames ``target``
        (B, F, C, H, W) differ from the last seen one ``seen`` (B, 1, C, H, W) (:func:`changed_cells`); 0 without
        a gate."""
        if logits is None:
            return target.new_zeros(())
        cells = changed_cells(
            target.flatten(0, 1), seen.expand_as(target).flatten(0, 1), self.cfg.gate_side, self.cfg.gate_threshold
        )
        return nn.functional.binary_cross_entropy_with_logits(logits.flatten(0, 1), cells)

    def loss(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        history: int,
        ssim_weight: float = 0.0,
        instruction: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Training losses on windows of ``H + F`` steps, mean squared errors in [0, 1] pixel units: the
        reconstruction of every frame and the frames predicted by the F-step autoregressive rollout
        (:meth:`predict_frames`); ``structural`` is ``1 - SSIM`` of the predicted frames (torchmetrics' SSIM, the one
        :mod:`~wam_isaac.evaluation.visual_fidelity` scores, mean over frames); ``gate`` the change gate's
        cross-entropy (:meth:`gate_loss`); ``ungated`` the squared error of the prediction without the gate;
        ``total`` is ``reconstruction + prediction + ssim_weight * structural + gate_weight * gate + ungated_weight *
        ungated``. ``latent`` (the rollout's latents against the encoded true frames, per dimension) is
        reported, not trained on: as a loss it let the encoder collapse every frame to one latent (perfectly
        predictable) in an overfitting run.

        Why the structural term: most of a frame is static, where the squared error of the small changes the decoder
        leaks (a few /255) is negligible but SSIM, on the flat noiseless render, drops; with MSE alone the model beat
        copy-last in SSIM where things moved and lost more than that on the static background."""
        return self.frame_losses(frames, actions, history, ssim_weight, instruction)[0]

    def frame_losses(
        self,
        frames: torch.Tensor,
        actions: torch.Tensor,
        history: int,
        ssim_weight: float = 0.0,
        instruction: torch.Tensor | None = None,
    ):
        """:meth:`loss`, and what the WAM heads read: ``(losses, latents (B, T, L) of the true frames, predicted
        latents (B, F, L), the trunk's features after each predicted latent (B, F, E))``."""
        from torchmetrics.functional.image import structural_similarity_index_measure

        target = to_float_frames(frames)
        forecast = target.shape[1] - history
        latents = self.encode(target)
        reconstruction = nn.functional.mse_loss(self.decode(latents), target)
        predicted, features = self.rollout(
            target, actions, history, forecast, instruction, latents=latents, with_features=True
        )
        predicted_frames, logits, ungated = self.predict_frames(target, predicted, history, with_gate=True)
        prediction = nn.functional.mse_loss(predicted_frames, target[:, history:])
        ungated_error = nn.functional.mse_loss(ungated, target[:, history:])
        gate = self.gate_loss(logits, target[:, history:], target[:, history - 1 : history])
        with torch.set_grad_enabled(torch.is_grad_enabled() and ssim_weight > 0):  # reported only at weight 0
            similarity = structural_similarity_index_measure(
                predicted_frames.flatten(0, 1), target[:, history:].flatten(0, 1), data_range=1.0
            )
        structural = 1.0 - similarity
        latent = nn.functional.mse_loss(predicted.detach(), latents[:, history:].detach())
        total = reconstruction + prediction + ssim_weight * structural + self.cfg.gate_weight * gate
        if self.cfg.ungated_weight > 0:
            total = total + self.cfg.ungated_weight * ungated_error
        losses = {"total": total, "reconstruction": reconstruction, "prediction": prediction,
                  "structural": structural, "gate": gate, "latent": latent, "ungated": ungated_error}  # fmt: skip
        return losses, latents, predicted, features
