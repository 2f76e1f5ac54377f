"""``wam eval``'s autoencoder figures on a pixel model whose encoder and decoder are exact (a frame's latent is its
pixels): the true future latents decoded as predictions are must give back each horizon's true frame (the windows'
steps ``history - 1 + h``, indexed here independently of the code under test), and the seen frame decodes to itself
(PSNR infinite; the ceiling above 100 dB); with an encoder that forgets the frame (a constant latent), the ceiling is
copy-last exactly."""

from __future__ import annotations

import math

import torch
from torch import nn

from wam_isaac.evaluation.visual_eval import autoencoder_figures, score_windows
from wam_isaac.models.config import TrunkCfg
from wam_isaac.models.pixel_training import FrameEpisodes
from wam_isaac.models.pixel_wam import PixelWAM, PixelWamCfg
from wam_isaac.models.pixel_world_model import PixelWorldModelCfg, to_float_frames

HISTORY, HORIZONS = 2, [1, 3]


def model_and_data(encoder: nn.Module):
    cfg = PixelWorldModelCfg(image_size=8, channels=(4,), latent=3 * 8 * 8, trunk=TrunkCfg(hidden=8), head_hidden=8,
                             change_gate=False)  # fmt: skip
    torch.manual_seed(0)
    model = PixelWAM(cfg, PixelWamCfg(kind="world"), action_dim=2, schema=None).eval()
    model.encoder, model.decoder = encoder, nn.Unflatten(1, (3, 8, 8))
    generator = torch.Generator().manual_seed(0)
    frames = [torch.randint(0, 256, (n, 8, 8, 3), dtype=torch.uint8, generator=generator) for n in (7, 9)]
    data = FrameEpisodes(frames, [torch.randn(len(f), 2, generator=generator) for f in frames])
    return model, data, data.windows(HISTORY + max(HORIZONS), 2)


def test_an_exact_autoencoder_reaches_the_true_frames():
    model, data, windows = model_and_data(nn.Flatten())
    scored = score_windows(model, data, HISTORY, HORIZONS, windows, "cpu")
    for row, (episode, start) in enumerate(windows):
        for column, horizon in enumerate(HORIZONS):
            true = to_float_frames(data.frames[episode][start + HISTORY - 1 + horizon])
            assert torch.allclose(scored["true_latent"][row, column], true, atol=1e-6)
        assert torch.allclose(scored["reconstruction"][row], to_float_frames(data.frames[episode][start + 1]))
    figures = autoencoder_figures(scored, HORIZONS, [1, 2])
    assert figures["reconstruction_psnr"] == math.inf
    assert all(figures["true_latent"][str(h)]["psnr"] > 100.0 for h in HORIZONS)  # float rounding of x + (y - x)


class Forgetful(nn.Module):
    """Every frame to the same latent: the decoded change is zero."""

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        return torch.full((frames.shape[0], 3 * 8 * 8), 0.5)


def test_an_autoencoder_that_forgets_the_frame_is_copy_last():
    model, data, windows = model_and_data(Forgetful())
    scored = score_windows(model, data, HISTORY, HORIZONS, windows, "cpu")
    figures = autoencoder_figures(scored, HORIZONS, [1, 2])
    from wam_isaac.evaluation.visual_fidelity import horizon_fidelity

    copy = horizon_fidelity(scored["predicted"], scored["true"], scored["last_seen"], [1, 2])
    for column, horizon in enumerate(HORIZONS, start=1):
        assert math.isfinite(figures["true_latent"][str(horizon)]["psnr"])
        assert figures["true_latent"][str(horizon)]["psnr"] == copy[str(column)]["copy_last_psnr"]
