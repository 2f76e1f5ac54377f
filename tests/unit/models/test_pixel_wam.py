"""Pixel WAMs on a tiny synthetic set where the answers are known: a square at a random place in each 16x16 frame,
the action is its position (scaled to about [-1, 1]) and the state read-out's target is its position in pixels.
Trained briefly, the joint WAM's action head must map frames to actions and the read-out frames to states far better
than predicting the mean; the cascaded WAM's planner must not read the action it is asked to infer."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.models.config import TrunkCfg
from wam_isaac.models.pixel_wam import PixelWAM, PixelWamCfg
from wam_isaac.models.pixel_world_model import PixelWorldModelCfg
from wam_isaac.models.schema import WamSchema

SIZE, SQUARE, STEPS = 16, 5, 4
CFG = PixelWorldModelCfg(image_size=SIZE, channels=(16, 32), latent=32, trunk=TrunkCfg(kind="gru", hidden=32, layers=2),
                         head_hidden=64, gate_side=4)  # fmt: skip
SCHEMA = WamSchema(state_keys={"obs/world_model/square_pos": [2]}, action_shape=[2])


def squares(batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Windows of frames (B, T, 16, 16, 3) uint8 with the square at a random place each step; states: its corner
    [px] (B, T, 2); actions: that position scaled to [-1, 1]; rewards: 0; no episode ends."""
    generator = torch.Generator().manual_seed(seed)
    corner = torch.randint(0, SIZE - SQUARE + 1, (batch, STEPS, 2), generator=generator)
    frames = torch.full((batch, STEPS, SIZE, SIZE, 3), 40, dtype=torch.uint8)
    for b in range(batch):
        for t in range(STEPS):
            x, y = corner[b, t].tolist()
            frames[b, t, y : y + SQUARE, x : x + SQUARE] = 220
    states = corner.float()
    actions = states / (SIZE - SQUARE) * 2 - 1
    return {"frames": frames, "actions": actions, "states": states, "rewards": torch.zeros(batch, STEPS),
            "terminal": torch.zeros(batch, dtype=torch.bool)}  # fmt: skip


def fitted(kind: str, batch: dict[str, torch.Tensor]) -> PixelWAM:
    model = PixelWAM(CFG, PixelWamCfg(kind=kind, action_weight=1.0, readout_weight=1.0), 2, SCHEMA)
    rows = {k: batch[k].flatten(0, 1) for k in ("states", "actions", "rewards")}
    model.fit_normalizers(rows["states"], None, rows["actions"], rows["rewards"])
    return model


@pytest.fixture(scope="module")
def joint():
    """A joint WAM after 80 Adam steps on 32 windows (history 2, forecast 2)."""
    torch.manual_seed(0)
    data = squares(32, seed=0)
    model = fitted("joint", data)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _ in range(80):
        losses = model.wam_loss(data, history=2)
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
    return model, data


def test_the_joint_action_head_learns_a_known_mapping(joint):
    """The mean action from each window's first k frames against the true action of frame k-1: RMS error below 0.25
    of the actions' std (predicting their mean scores 1; measured 0.067)."""
    model, data = joint
    model.eval()
    errors = []
    for k in range(1, STEPS + 1):
        previous = torch.cat((torch.zeros_like(data["actions"][:, :1]), data["actions"][:, : k - 1]), dim=1)
        action = model.act(data["frames"][:, :k], None, previous)
        errors.append(action - data["actions"][:, k - 1])
    rms = torch.cat(errors).square().mean().sqrt()
    assert rms < 0.25 * data["actions"].std(), (rms, data["actions"].std())


def test_the_state_readout_loss_falls(joint):
    """The read-out's loss (MSE in units of each state dimension's std) on the true frames below 0.15 (the mean
    state scores 1; measured 0.010), and the states it reads within 1.5 px RMS of the squares' corners (measured
    0.34 px; their std is 3.4 px)."""
    model, data = joint
    with torch.no_grad():
        losses = model.wam_loss(data, history=2)
        latents = model.encode(data["frames"])
        states = model.read_state(latents, model.history_features(latents, None, data["actions"]))
    assert losses["readout"] < 0.15, losses
    assert (states - data["states"]).square().mean().sqrt() < 1.5


def test_the_cascaded_planner_does_not_read_the_action_it_infers():
    """The cascaded WAM's action at step t comes from frames and earlier actions only: changing a_{t-1} changes it,
    changing nothing but the label a_t (which is not an input) cannot; and its loss has the planner and inverse-
    dynamics terms."""
    torch.manual_seed(0)
    data = squares(4, seed=1)
    model = fitted("cascaded", data).eval()
    previous = torch.cat((torch.zeros_like(data["actions"][:, :1]), data["actions"][:, :-1]), dim=1)
    action = model.act(data["frames"], None, previous)
    changed = previous.clone()
    changed[:, -1] += 1.0
    assert action.shape == (4, 2) and not torch.allclose(model.act(data["frames"], None, changed), action)
    losses = model.wam_loss(data, history=2)
    assert {"plan", "action", "readout", "readout_imagined"} <= set(losses)
    weights = model.wam
    expected = losses["total"] - weights.plan_weight * losses["plan"] - weights.action_weight * losses["action"]
    expected = expected - weights.readout_weight * (losses["readout"] + losses["readout_imagined"])
    world = losses["reconstruction"] + losses["prediction"] + CFG.gate_weight * losses["gate"]
    assert expected.item() == pytest.approx(world.item(), rel=1e-5)


class _FakeEnv:
    """Frames of value 10 * step + env; env 1 ends at its second step."""

    def __init__(self):
        self.t, self.num_envs = 0, 2

    def _obs(self):
        return {"camera": torch.tensor([10 * self.t, 10 * self.t + 1], dtype=torch.uint8)[:, None, None, None]}

    def reset(self, seed=0):
        self.t = 0
        return self._obs(), {}

    def step(self, actions):
        self.t += 1
        terminated = torch.tensor([False, self.t == 2])
        return self._obs(), torch.zeros(2), terminated, torch.zeros(2, dtype=torch.bool), {}


def test_the_closed_loop_frame_window_restarts_with_each_episode():
    """The per-env window of the last 3 frames slides with each step; an env that ends starts its new window with
    copies of its first frame (as the state window does), the other env's window goes on."""
    from wam_isaac.evaluation.visual_eval import FrameWindows

    env = FrameWindows(_FakeEnv(), history=3)
    env.reset(seed=0)
    assert env.frames[:, :, 0, 0, 0].tolist() == [[0, 0, 0], [1, 1, 1]] and env.num_envs == 2
    env.step(None)
    env.step(None)
    assert env.frames[:, :, 0, 0, 0].tolist() == [[0, 10, 20], [21, 21, 21]]
    env.step(None)
    assert env.frames[:, :, 0, 0, 0].tolist() == [[10, 20, 30], [21, 21, 31]]
