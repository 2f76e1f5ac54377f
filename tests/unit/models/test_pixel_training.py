"""Pixel world-model training data and evaluation: windows never cross an episode's end (its last step is in
exactly the windows that end there), and a model that predicts no change scores exactly as copy-last at every
horizon (the evaluation aligns history, forecast and the last seen frame)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter
from wam_isaac.models.config import TrunkCfg
from wam_isaac.models.pixel_training import PixelTrainCfg, evaluate_pixel_world_model, load_frame_episodes
from wam_isaac.models.pixel_world_model import PixelWorldModel, PixelWorldModelCfg

SPECS = {"obs/camera": KeySpec((16, 16, 3), "uint8"), "actions": KeySpec((2,), "float32")}
LENGTHS = [12, 3, 9, 14]


@pytest.fixture
def dataset(tmp_path):
    """Episodes whose frame t of episode e is uniformly 10 * e + t (a brightness ramp), env e."""
    episodes = []
    for e, length in enumerate(LENGTHS):
        frames = (10 * e + np.arange(length, dtype=np.uint8))[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8)
        actions = np.zeros((length, 2), np.float32)
        episodes.append(Episode({"obs/camera": frames, "actions": actions}, e, 0, False, {}, {"budget_end": 0}))
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", SPECS, episodes_per_shard=2) as writer:
        writer.write_many(episodes)
    return tmp_path / "d"


def test_windows_stay_inside_episodes(dataset):
    data = load_frame_episodes(dataset, [0, 1, 2, 3], "obs/camera")
    windows = data.windows(length=5, stride=1)
    assert len(windows) == (12 - 4) + 0 + (9 - 4) + (14 - 4)
    frames, _ = data.batch(windows, 5, "cpu")
    brightness = frames[:, :, 0, 0, 0].int()
    assert torch.equal(brightness[:, 1:] - brightness[:, :-1], torch.ones(len(windows), 4, dtype=torch.int32))
    last_steps = [(e, s) for e, s in windows if s + 5 == LENGTHS[e]]
    assert sorted(last_steps) == [(0, 7), (2, 4), (3, 9)]
    assert data.windows(length=5, stride=4) == [(0, 0), (0, 4), (2, 0), (2, 4), (3, 0), (3, 4), (3, 8)]


def test_a_model_predicting_no_change_scores_as_copy_last(dataset):
    cfg = PixelTrainCfg(history=2, horizons=(1, 4), eval_stride=1, val_fraction=0.5,
                        model=PixelWorldModelCfg(image_size=16, channels=(8,), latent=8,
                                                 trunk=TrunkCfg(hidden=8), head_hidden=8))  # fmt: skip
    model = PixelWorldModel(cfg.model, action_dim=2)
    last = model.latent_head[-1]
    torch.nn.init.zeros_(last.weight)
    torch.nn.init.zeros_(last.bias)
    report = evaluate_pixel_world_model(model, dataset, cfg)
    assert report["windows"] > 0
    for horizon in ("1", "4"):
        figures = report["horizons"][horizon]
        assert figures["psnr"] == pytest.approx(figures["copy_last_psnr"], abs=1e-4)
        # frames brighten by one level a step: copy-last is off by h levels at horizon h
        assert figures["copy_last_psnr"] == pytest.approx(20 * np.log10(255 / int(horizon)), abs=1e-3)


def test_pretraining_fits_the_autoencoder_alone(dataset):
    """Reconstruction-only pretraining brings the ramp frames' reconstruction error down by orders of magnitude and
    changes the encoder and decoder only (the latent dynamics, the gate start from their initialization)."""
    from wam_isaac.models.pixel_training import pretrain_autoencoder
    from wam_isaac.models.pixel_world_model import to_float_frames

    cfg = PixelTrainCfg(history=2, forecast=2, batch=4, lr=1e-2, pretrain_updates=300,
                        model=PixelWorldModelCfg(image_size=16, channels=(8,), latent=8,
                                                 trunk=TrunkCfg(hidden=8), head_hidden=8))  # fmt: skip
    torch.manual_seed(0)
    model = PixelWorldModel(cfg.model, action_dim=2)
    frames = torch.cat(load_frame_episodes(dataset, [0, 1, 2, 3], "obs/camera").frames)
    target = to_float_frames(frames)

    def error() -> float:
        with torch.no_grad():
            return torch.nn.functional.mse_loss(model.decoder(model.encoder(target)), target).item()

    before = error()
    untouched = {k: v.clone() for k, v in model.state_dict().items() if not k.startswith(("encoder.", "decoder."))}
    encoder = model.encoder.out.weight.detach().clone()
    assert pretrain_autoencoder(model, frames, PixelTrainCfg(pretrain_updates=0), "cpu", np.random.default_rng(0)) == {}
    stats = pretrain_autoencoder(model, frames, cfg, "cpu", np.random.default_rng(0), log=lambda _: None)
    after = error()
    # uniform frames of 0-43/255: an untrained sigmoid decoder sits near 0.5 (error > 0.05); fitted, under 8/255 RMS
    # (4.7/255 when written)
    assert before > 0.05
    assert after < (8 / 255) ** 2
    assert stats["pretrain_reconstruction"] < (8 / 255) ** 2
    assert not torch.equal(model.encoder.out.weight, encoder)
    for key, value in untouched.items():
        assert torch.equal(model.state_dict()[key], value), key
