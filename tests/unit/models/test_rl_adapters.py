"""The rsl-rl adapters over a joint WAM: the recurrent update recomputes the rollout's log-probabilities and values,
the shared critic reads the actor's features, inputs follow the schema's order, and the ONNX graph acts as the
actor does."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from tensordict import TensorDict

sys.path.insert(0, str(Path(__file__).parents[1] / "training"))
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect  # noqa: E402

from wam_isaac.models.rl_adapters import WamActor, flatten_observations, group_vector  # noqa: E402
from wam_isaac.models.schema import WamSchema  # noqa: E402


@pytest.mark.parametrize("trunk", ["gru", "mlp"])
def test_update_minibatches_recompute_the_rollout_log_probs_and_values(trunk):
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=5, seed=0)  # episodes end inside the rollout of 8 steps
    alg = build_algorithm(env, wam_model={"trunk": trunk, "hidden": 32, "layers": 2, "head_hidden": 32})
    assert alg.actor.is_recurrent == (trunk == "gru")
    collect(alg, env)
    assert alg.storage.dones.any(), "the rollout must hold resets (the hidden state is zeroed there)"
    if trunk == "gru":
        batches = alg.storage.recurrent_mini_batch_generator(2, 1)
    else:
        batches = alg.storage.mini_batch_generator(2, 1)
    for batch in batches:
        with torch.no_grad():
            alg.actor(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[0])
            values = alg.critic(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[1])
            log_prob = alg.actor.get_output_log_prob(batch.actions)
        torch.testing.assert_close(log_prob, batch.old_actions_log_prob.squeeze(-1), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(values, batch.values, atol=1e-5, rtol=1e-5)


def test_shared_critic_reuses_the_actor_features_and_never_advances_the_memory():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=4)
    alg = build_algorithm(env)
    actor, critic = alg.actor, alg.critic
    obs = alg.flat(env.get_observations())
    with torch.no_grad():
        actor(obs)
        memory = actor.hidden_state.clone()
        features = actor.cached_features(obs, None)
        torch.testing.assert_close(critic(obs), alg.wam.value_head(features))
        other = alg.flat(env.step(torch.zeros(4, 2))[0])
        value = critic(other)  # not the actor's last obs: computed from the actor's memory, not advancing it
        assert torch.equal(actor.hidden_state, memory)
        actor(other)
        torch.testing.assert_close(value, critic(other))
    assert critic.get_hidden_state() is actor.hidden_state
    assert list(critic.parameters()) == list(alg.wam.value_head.parameters())


def test_groups_are_read_in_the_schema_order_nested_or_flat():
    schema = WamSchema(state_keys={"obs/world_model/b": [2], "obs/world_model/a": [1]}, action_shape=[1])
    obs = TensorDict(
        {"world_model": TensorDict({"a": torch.tensor([[1.0]]), "b": torch.tensor([[2.0, 3.0]])}, [1])}, [1]
    )
    assert group_vector(obs, "world_model", schema.state_keys, (1,)).tolist() == [[2.0, 3.0, 1.0]]
    flat = flatten_observations(obs, schema)
    assert flat["world_model"].tolist() == [[2.0, 3.0, 1.0]]
    assert group_vector(flat, "world_model", schema.state_keys, (1,)).tolist() == [[2.0, 3.0, 1.0]]


@pytest.mark.parametrize("trunk", ["gru", "mlp"])
def test_onnx_policy_acts_as_the_actor_over_an_episode(tmp_path, trunk):
    import onnxruntime

    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=1, episode_length=50, seed=1)
    alg = build_algorithm(env, wam_model={"trunk": trunk, "hidden": 32, "layers": 2, "head_hidden": 32})
    actor: WamActor = alg.actor
    alg.wam.normalizers.state.std.fill_(0.5)  # non-trivial normalizers travel into the graph
    alg.wam.normalizers.action.mean.fill_(0.1)
    policy = actor.as_onnx(verbose=False)
    path = tmp_path / "policy.onnx"
    torch.onnx.export(
        policy,
        policy.get_dummy_inputs(),
        str(path),
        input_names=policy.input_names,
        output_names=policy.output_names,
        dynamo=False,
    )
    session = onnxruntime.InferenceSession(str(path))
    obs = env.get_observations()
    feeds = {name: value.numpy() for name, value in zip(policy.input_names, policy.get_dummy_inputs(), strict=True)}
    schema = alg.wam.schema
    for _ in range(6):
        with torch.no_grad():
            expected = actor(obs)
        flat = torch.cat(
            [
                group_vector(obs, "world_model", schema.state_keys, (1,)),
                group_vector(obs, "instruction", schema.instruction_keys, (1,)),
                obs["previous_action"],
            ],
            dim=-1,
        )
        feeds["obs"] = flat.numpy()
        outputs = session.run(None, feeds)
        np.testing.assert_allclose(outputs[0], expected.numpy(), atol=1e-5)
        if trunk == "gru":
            feeds["h_in"] = outputs[1]
        obs = env.step(expected)[0]


def test_reset_outside_inference_mode_zeroes_only_the_ended_envs_memory():
    """A rollout's memory is made under inference mode; ``wam play`` resets it at episode ends outside it."""
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=4)
    alg = build_algorithm(env)
    actor = alg.actor
    with torch.inference_mode():
        actor(alg.flat(env.get_observations()))
    memory = actor.hidden_state.clone()
    assert memory.abs().amin(dim=-1).gt(0).all(), "every env's memory must be nonzero before the reset"
    actor.reset(torch.tensor([0, 1, 0, 1]))
    assert torch.equal(actor.hidden_state[:, [1, 3]], torch.zeros_like(memory[:, [1, 3]]))
    assert torch.equal(actor.hidden_state[:, [0, 2]], memory[:, [0, 2]])
