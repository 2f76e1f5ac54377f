"""Rotations without sign flips: quaternion math against closed forms, and a world model rolled across a +-pi yaw
crossing of stored (w >= 0) quaternions."""

from __future__ import annotations

import math

import pytest
import torch

from wam_isaac.models import WamSchema, WorldModel, model_cfg
from wam_isaac.models.rotations import (
    matrix_columns_from_quat,
    quat_angle,
    quat_from_rotvec,
    quat_multiply,
    rotvec_from_quat,
)
from wam_isaac.models.state_space import StateSpace

SCHEMA = WamSchema(
    state_keys={"obs/world_model/cube_pos": [3], "obs/world_model/cube_quat": [4]},
    action_shape=[1],
    has_termination=False,
)


def yaw_quat(yaw: torch.Tensor) -> torch.Tensor:
    """xyzw quaternions of yaws [rad], made unique (w >= 0) like the dataset stores them."""
    q = torch.stack((torch.zeros_like(yaw), torch.zeros_like(yaw), torch.sin(yaw / 2), torch.cos(yaw / 2)), -1)
    return torch.where(q[..., 3:] < 0, -q, q)


def test_quaternion_math_matches_closed_forms():
    # 90 deg about z, then 90 deg about x: x -> y -> z and y -> -x -> -x, i.e. q_x q_z
    qz = quat_from_rotvec(torch.tensor([0.0, 0.0, math.pi / 2]))
    qx = quat_from_rotvec(torch.tensor([math.pi / 2, 0.0, 0.0]))
    h = math.sqrt(0.5)
    torch.testing.assert_close(qz, torch.tensor([0.0, 0.0, h, h]))
    product = quat_multiply(qx, qz)
    torch.testing.assert_close(product, torch.tensor([0.5, -0.5, 0.5, 0.5]))
    torch.testing.assert_close(matrix_columns_from_quat(product), torch.tensor([0.0, 0.0, 1.0, -1.0, 0.0, 0.0]))
    # the 120 deg rotation about (1, 1, 1): x -> y, y -> z; the same columns for -q
    cyclic = torch.tensor([0.5, 0.5, 0.5, 0.5])
    for q in (cyclic, -cyclic):
        torch.testing.assert_close(matrix_columns_from_quat(q), torch.tensor([0.0, 1.0, 0.0, 0.0, 0.0, 1.0]))
    # the log map inverts the exp map, and ignores the quaternion's sign
    rotvec = torch.tensor([[0.3, -0.2, 0.1], [0.0, 0.0, 3.1], [1e-9, 0.0, 0.0]])
    q = quat_from_rotvec(rotvec)
    torch.testing.assert_close(rotvec_from_quat(q), rotvec)
    torch.testing.assert_close(rotvec_from_quat(-q), rotvec)
    # geodesic angle: 10 deg yaw apart across the +-pi cut, whatever the stored signs
    a, b = yaw_quat(torch.tensor(math.radians(175.0))), yaw_quat(torch.tensor(math.radians(-175.0)))
    assert float(quat_angle(a, b)) == pytest.approx(math.radians(10.0), abs=1e-6)
    assert float(quat_angle(a, -b)) == pytest.approx(math.radians(10.0), abs=1e-6)


def test_the_change_across_the_yaw_cut_is_the_small_rotation_not_the_sign_flip():
    space = StateSpace(SCHEMA)
    yaw = torch.tensor([math.radians(178.0), math.radians(-178.0)])  # 4 degrees of turn across +-pi
    states = torch.cat((torch.zeros(2, 3), yaw_quat(yaw)), -1)
    assert float((states[1, 3:] - states[0, 3:]).norm()) > 1.9  # the stored quaternion jumps by ~2
    change = space.difference(states[0], states[1])
    torch.testing.assert_close(change, torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, math.radians(4.0)]))
    landed = space.compose(states[0], change)
    assert float(quat_angle(landed[3:], states[1, 3:])) < 1e-6
    # the raw representation sees the flip as a change of ~2 (what the normalizer and the targets used to get)
    assert float(StateSpace(SCHEMA, "raw").difference(states[0], states[1]).norm()) > 1.9


def test_a_rollout_across_the_yaw_cut_has_no_jump_in_the_predicted_orientation():
    """A world model whose head predicts the true one-step change rolls a cube spinning at 2 deg/step from 170 to
    -170 deg (stored quaternions flip sign at 180): the predicted orientation moves 2 deg every step, on the truth."""
    torch.manual_seed(0)
    model = WorldModel(SCHEMA, model_cfg("mlp", head_hidden=8)).eval()
    steps = 21
    yaw = torch.deg2rad(170.0 + 2.0 * torch.arange(steps, dtype=torch.float64)).float()
    yaw = torch.atan2(torch.sin(yaw), torch.cos(yaw))  # wrapped into (-pi, pi]: crosses the cut at step 5
    states = torch.cat((torch.zeros(steps, 3), yaw_quat(yaw)), -1)[None]
    pairs = torch.stack((states[0, :-1], states[0, 1:]), 1)
    model.fit_normalizers(_Steps(states[0, :, None]), _Steps(pairs))
    change = model.delta_target(states[0, :1], states[0, 1:2])  # the normalized 2 deg yaw change

    class ConstantHead(torch.nn.Module):
        def forward(self, features, actions):
            from wam_isaac.models.world_model import StepPrediction

            batch = features.shape[:-1]
            zeros = torch.zeros(*batch, 1)
            return StepPrediction(
                change.expand(*batch, -1), torch.zeros(*batch, 6), zeros, zeros, torch.zeros(*batch, 0)
            )

    model.dynamics = ConstantHead()
    history = 2
    with torch.no_grad():
        rollout = model.rollout(states, torch.zeros(1, steps, 0), torch.zeros(1, steps, 1), history)
    predicted = torch.cat((states[:, history - 1 : history], rollout.states), 1)[0]
    step_angles = quat_angle(predicted[:-1, 3:], predicted[1:, 3:])
    torch.testing.assert_close(step_angles, torch.full_like(step_angles, math.radians(2.0)), atol=1e-5, rtol=0)
    # the largest jump of the predicted quaternion's components (either sign) is a 2-degree step's, not 2
    assert float((predicted[1:, 3:] - predicted[:-1, 3:]).norm(dim=-1).max()) < 0.02
    error = quat_angle(predicted[1:, 3:], states[0, history:, 3:])
    assert float(error.max()) < 1e-4


class _Steps:
    """The fields :meth:`WorldModel.fit_normalizers` reads, for windows of states (N, T, S)."""

    def __init__(self, states: torch.Tensor) -> None:
        n, t = states.shape[:2]
        self.states = states
        self.instruction = torch.zeros(n, t, 0)
        self.actions = torch.randn(n, t, 1)
        self.rewards = torch.randn(n, t)


def test_per_term_delta_scale_pools_a_terms_dimensions():
    """One scale per term: the cube's nearly constant height gets the scale of its horizontal motion."""
    model = WorldModel(SCHEMA, model_cfg("mlp", head_hidden=8))
    generator = torch.Generator().manual_seed(0)
    start = torch.cat((torch.zeros(1000, 3), yaw_quat(torch.zeros(1000))), -1)
    end = start.clone()
    end[:, 0] += 0.03 * torch.randn(1000, generator=generator)  # x moves 3 cm per step
    end[:, 2] += 1e-4 * torch.randn(1000, generator=generator)  # z barely moves
    end[:, 3:] = quat_multiply(
        quat_from_rotvec(torch.tensor([0.0, 0.0, 0.1]) * torch.randn(1000, 1, generator=generator)), end[:, 3:]
    )
    pairs = torch.stack((start, end), 1)
    model.fit_normalizers(_Steps(start[:, None]), _Steps(pairs))
    std = model.normalizers.delta.std
    x_std, z_std = float(end[:, 0].std(unbiased=False)), float(end[:, 2].std(unbiased=False))
    pooled = math.sqrt((x_std**2 + z_std**2) / 3)  # y never moves
    torch.testing.assert_close(std[:3], torch.full((3,), pooled))
    yaw_std = float(model.space.difference(start, end)[:, 5].std(unbiased=False))
    torch.testing.assert_close(std[3:], torch.full((3,), yaw_std / math.sqrt(3)))
    per_dim = WorldModel(SCHEMA, model_cfg("mlp", head_hidden=8, delta_scale="dim"))
    per_dim.fit_normalizers(_Steps(start[:, None]), _Steps(pairs))
    assert float(per_dim.normalizers.delta.std[2]) == pytest.approx(z_std, rel=1e-4)


def test_a_tilted_cube_yawing_at_a_constant_rate_is_continued_exactly_in_the_world_frame():
    """A cube tilted 0.3 rad about x turns about the world's z at 0.05 rad per step: its change is the same
    world-frame rotation vector every step, composing it lands on the truth and so does the constant-velocity
    baseline 10 steps on; composed in the body frame (``q exp(r)``) the same change would miss by 0.015 rad a step."""
    from wam_isaac.training.metrics import baseline_forecasts

    steps = 12
    tilt = quat_from_rotvec(torch.tensor([0.3, 0.0, 0.0]))
    yaw = 3.0 + 0.05 * torch.arange(steps, dtype=torch.float64)  # crosses +-pi at step 3
    quats = quat_multiply(yaw_quat(yaw).float(), tilt.expand(steps, 4))
    quats = torch.where(quats[:, 3:] < 0, -quats, quats)
    states = torch.cat((torch.zeros(steps, 3), quats), -1)
    space = StateSpace(SCHEMA)
    change = space.difference(states[:-1], states[1:])
    torch.testing.assert_close(change, torch.tensor([0.0, 0.0, 0.0, 0.0, 0.0, 0.05]).expand(steps - 1, 6))
    landed = space.compose(states[:-1], change)
    assert float(quat_angle(landed[:, 3:], states[1:, 3:]).max()) < 1e-5
    forecast = baseline_forecasts(states[None], 2, SCHEMA)["constant_velocity"][0]
    assert float(quat_angle(forecast[:, 3:], states[2:, 3:]).max()) < 1e-4
    body = quat_multiply(states[:-1, 3:], quat_from_rotvec(change[:, 3:]))
    assert float(quat_angle(body, states[1:, 3:]).min()) > 0.01
