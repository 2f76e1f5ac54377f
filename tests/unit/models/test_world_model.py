"""WorldModel: the batched autoregressive rollout equals a hand-unrolled loop, teacher forcing equals feeding the
true states by hand, and quaternion terms stay unit length."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.models import TrunkCfg, WamSchema, WorldModel, model_cfg, previous_actions

SCHEMA = WamSchema(
    state_keys={"obs/world_model/pos": [3], "obs/world_model/base_quat": [4]},
    instruction_keys={"obs/instruction/goal": [2]},
    action_shape=[2],
    contact_keys={"labels/contact/feet/flag": [2]},
)
HISTORY, FORECAST, BATCH = 3, 4, 5
TOLERANCE = {"rtol": 1e-5, "atol": 1e-6}


def make_model(kind: str) -> WorldModel:
    """A small world model with random (not identity) normalizers, so that normalization is exercised."""
    torch.manual_seed(0)
    trunk = TrunkCfg(kind=kind, hidden=16, layers=2, heads=2, context=16)
    model = WorldModel(SCHEMA, model_cfg(kind, trunk=trunk, head_hidden=16)).eval()
    for normalizer in (model.normalizers.state, model.normalizers.delta, model.normalizers.instruction,
                       model.normalizers.action):  # fmt: skip
        normalizer.mean.copy_(torch.randn_like(normalizer.mean))
        normalizer.std.copy_(0.5 + torch.rand_like(normalizer.std))
    return model


def make_sequences(span: int):
    """Random states (unit quaternions), instructions and actions (B, span, ·)."""
    generator = torch.Generator().manual_seed(1)
    states = torch.randn(BATCH, span, 7, generator=generator)
    states[..., 3:] = states[..., 3:] / states[..., 3:].norm(dim=-1, keepdim=True)
    instruction = torch.randn(BATCH, span, 2, generator=generator)
    actions = torch.randn(BATCH, span, 2, generator=generator)
    return states, instruction, actions


def unrolled(model: WorldModel, states, instruction, actions, teacher: bool):
    """The rollout by hand: at every forecast step, encode the whole sequence so far from scratch (no carried
    memory), predict from the last step's features, integrate; feed back the prediction or the true state."""
    fed = [states[:, t] for t in range(HISTORY)]
    predicted, inputs, means = [], [], []
    for f in range(FORECAST):
        t = HISTORY - 1 + f
        tokens = model.tokens(torch.stack(fed, 1), instruction[:, : t + 1], previous_actions(actions[:, : t + 1]))
        features, _ = model.encode(tokens)
        prediction = model.predict_next(features[:, -1], actions[:, t])
        inputs.append(fed[-1])
        predicted.append(model.next_state(fed[-1], prediction.delta_mean))
        means.append(prediction.delta_mean)
        fed.append(states[:, t + 1] if teacher else predicted[-1])
    return torch.stack(predicted, 1), torch.stack(inputs, 1), torch.stack(means, 1)


@pytest.mark.parametrize("kind", ["mlp", "gru", "transformer"])
def test_rollout_equals_hand_unrolled_loop(kind):
    model = make_model(kind)
    states, instruction, actions = make_sequences(HISTORY + FORECAST)
    with torch.no_grad():
        rollout = model.rollout(states, instruction, actions, HISTORY)
        expected_states, expected_inputs, expected_means = unrolled(model, states, instruction, actions, False)
    assert rollout.states.shape == (BATCH, FORECAST, 7)
    torch.testing.assert_close(rollout.states, expected_states, **TOLERANCE)
    torch.testing.assert_close(rollout.inputs, expected_inputs, **TOLERANCE)
    torch.testing.assert_close(rollout.predictions.delta_mean, expected_means, **TOLERANCE)
    # the first input is the last true history state; later ones are the model's own predictions
    assert torch.equal(rollout.inputs[:, 0], states[:, HISTORY - 1])
    assert torch.equal(rollout.inputs[:, 1:], rollout.states[:, :-1])
    # predicted quaternions are renormalized after every step
    torch.testing.assert_close(rollout.states[..., 3:].norm(dim=-1), torch.ones(BATCH, FORECAST))


@pytest.mark.parametrize("kind", ["mlp", "gru", "transformer"])
def test_teacher_forced_rollout_equals_feeding_true_states(kind):
    model = make_model(kind)
    states, instruction, actions = make_sequences(HISTORY + FORECAST)
    with torch.no_grad():
        rollout = model.rollout(states, instruction, actions, HISTORY, teacher_states=states)
        expected_states, expected_inputs, expected_means = unrolled(model, states, instruction, actions, True)
        # and the same as one teacher-forced pass over the whole sequence
        _, one_pass, _ = model.teacher_forced(states[:, :-1], instruction[:, :-1], actions[:, :-1])
    torch.testing.assert_close(rollout.states, expected_states, **TOLERANCE)
    # every step starts from the true state, so the loss targets are true one-step deltas
    assert torch.equal(rollout.inputs, states[:, HISTORY - 1 : -1])
    torch.testing.assert_close(rollout.inputs, expected_inputs, **TOLERANCE)
    torch.testing.assert_close(rollout.predictions.delta_mean, expected_means, **TOLERANCE)
    torch.testing.assert_close(rollout.predictions.delta_mean, one_pass.delta_mean[:, HISTORY - 1 :], **TOLERANCE)
