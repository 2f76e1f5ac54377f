"""The pixel world model: its rollout reads only the history frames, and it overfits a tiny dataset of moving
squares (frames and the frames it predicts from them) far below the error of the dataset's mean frame."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from wam_isaac.models.config import TrunkCfg
from wam_isaac.models.pixel_world_model import PixelWorldModel, PixelWorldModelCfg, to_float_frames

SIZE, SQUARE = 32, 12
TINY = PixelWorldModelCfg(
    image_size=SIZE, channels=(16, 32), latent=32, trunk=TrunkCfg(kind="gru", hidden=32, layers=2), head_hidden=32
)


def moving_squares(batch: int, steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B, T, 32, 32, 3) uint8 of a blue square on a brown table, moved each step by the action (B, T, 2)
    [px]."""
    generator = torch.Generator().manual_seed(1)
    position = torch.randint(2, SIZE - SQUARE - 2, (batch, 2), generator=generator)
    actions = torch.randint(-2, 3, (batch, steps, 2), generator=generator)
    frames = torch.empty(batch, steps, SIZE, SIZE, 3, dtype=torch.uint8)
    frames[:] = torch.tensor([90, 60, 40], dtype=torch.uint8)
    for t in range(steps):
        for b, (x, y) in enumerate(position.tolist()):
            frames[b, t, y : y + SQUARE, x : x + SQUARE] = torch.tensor([30, 100, 230], dtype=torch.uint8)
        position = (position + actions[:, t]).clamp(0, SIZE - SQUARE)
    return frames, actions.float()


def test_rollout_reads_only_the_history():
    torch.manual_seed(0)
    model = PixelWorldModel(TINY, action_dim=2)
    frames, actions = moving_squares(2, 6)
    changed = frames.clone()
    changed[:, 3:] = 255 - changed[:, 3:]
    with torch.no_grad():
        predicted = model.rollout(frames, actions, history=3, forecast=3)
        assert torch.equal(predicted, model.rollout(changed, actions, history=3, forecast=3))
        other_actions = actions.clone()
        other_actions[:, 3] += 5.0  # a_3 moves x_4 and x_5 but not x_3
        moved = model.rollout(frames, other_actions, history=3, forecast=3)
    assert predicted.shape == (2, 3, TINY.latent)
    assert torch.equal(moved[:, 0], predicted[:, 0]) and not torch.allclose(moved[:, 1], predicted[:, 1])


def test_overfits_a_tiny_dataset():
    """150 Adam steps on 4 sequences of 5 frames (history 2, forecast 3): the reconstructed and the predicted frames
    must be within a quarter of the mean frame's squared error (measured: 0.10 and 0.07 of it)."""
    torch.manual_seed(0)
    frames, actions = moving_squares(4, 5)
    model = PixelWorldModel(TINY, action_dim=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    for _ in range(150):
        losses = model.loss(frames, actions, history=2)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    target = to_float_frames(frames)
    mean_frame_error = (target - target.mean(dim=(0, 1), keepdim=True)).square().mean().item()
    with torch.no_grad():
        losses = model.loss(frames, actions, history=2)
    assert losses["reconstruction"].item() < 0.25 * mean_frame_error, (losses, mean_frame_error)
    assert losses["prediction"].item() < 0.25 * mean_frame_error, (losses, mean_frame_error)


def test_loss_terms_on_known_frames():
    """A decoder blind to its latent predicts no change (the last seen frame): on grey frames of 100 that turn 116
    at the last step, the prediction term is (16/255)^2, the structural term 1 - SSIM's closed form for constant
    frames (its luminance term), and ``total`` weighs them as documented."""
    torch.manual_seed(0)
    model = PixelWorldModel(TINY, action_dim=2)
    with torch.no_grad():
        model.decoder.input.weight.zero_()
    frames = torch.full((2, 3, SIZE, SIZE, 3), 100, dtype=torch.uint8)
    frames[:, 2] = 116
    actions = torch.ones(2, 3, 2)
    a, b, c1 = 100 / 255, 116 / 255, 0.01**2
    expected_ssim = (2 * a * b + c1) / (a * a + b * b + c1)  # 0.98909
    plain = model.loss(frames, actions, history=2)
    weighted = model.loss(frames, actions, history=2, ssim_weight=0.5)
    assert plain["prediction"].item() == pytest.approx((16 / 255) ** 2, rel=1e-5)
    assert plain["structural"].item() == pytest.approx(1 - expected_ssim, abs=5e-5)
    assert plain["ungated"].item() == pytest.approx(plain["prediction"].item())  # no change: the gate changes nothing
    heavier = PixelWorldModel(replace(TINY, ungated_weight=2.0), action_dim=2)
    heavier.load_state_dict(model.state_dict())
    total = plain["total"].item() + 2.0 * plain["ungated"].item()
    assert heavier.loss(frames, actions, history=2)["total"].item() == pytest.approx(total, rel=1e-5)
    gated = TINY.gate_weight * plain["gate"].item()
    assert plain["total"].item() == pytest.approx(plain["reconstruction"].item() + plain["prediction"].item() + gated)
    assert weighted["total"].item() == pytest.approx(plain["total"].item() + 0.5 * (1 - expected_ssim), abs=3e-5)
    # every cell changed (by 16/255 > the threshold): the gate's target is all ones, its loss -log sigmoid(logits)
    with torch.no_grad():
        seen = model.encode(frames[:, 1:2])[:, 0]
        logits = model.gate.logits(model.rollout(frames, actions, history=2, forecast=1)[:, 0], seen)
    expected_gate = torch.nn.functional.softplus(-logits).mean().item()
    assert plain["gate"].item() == pytest.approx(expected_gate, rel=1e-5)


def test_the_gate_keeps_the_change_only_where_it_opens():
    """With the gate shut (logits -inf) a prediction is exactly the last seen frame whatever the latent; open
    (+inf) it is the last seen frame plus the whole decoded change."""
    torch.manual_seed(0)
    model = PixelWorldModel(TINY, action_dim=2)
    frames, _ = moving_squares(2, 3)
    latents = torch.randn(2, 1, TINY.latent)
    last = model.gate.net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1e4)
        shut = model.predict_frames(frames, latents, history=2)
        last.bias.fill_(1e4)
        opened = model.predict_frames(frames, latents, history=2)
        seen = to_float_frames(frames[:, 1:2])
        change = model.decode(latents) - model.decode(model.encode(seen))
    assert torch.equal(shut, seen)
    assert torch.allclose(opened, (seen + change).clamp(0, 1), atol=1e-6) and not torch.equal(opened, shut)
