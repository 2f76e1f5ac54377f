"""Imagination (branched rollouts through a joint WAM) without a simulator: GAE worked out by hand; rollouts start only
from valid real states; the disagreement penalty, the member each env follows, dones and the horizon-cap bootstrap on
heads set to known constants; the stored observations and hidden states reproduce the policy's log-probabilities and
values (what PPO's update recomputes); normalizers, parameters and the actor's hidden state untouched."""

from __future__ import annotations

import math

import pytest
import torch

from wam_isaac.models import TrunkCfg, WamSchema, model_cfg
from wam_isaac.models.rl_adapters import WamActor
from wam_isaac.models.wam import JointWAM
from wam_isaac.models.world_model import previous_actions
from wam_isaac.training.imagination import (
    DynamicsEnsemble,
    ImaginationCfg,
    branch_points,
    ensemble_loss,
    gae,
    imagination_active,
    imagine,
    imagined_batch_size,
)
from wam_isaac.training.objectives import LossCfg
from wam_isaac.training.sequences import Sequences

SCHEMA = WamSchema(
    state_keys={"obs/world_model/x": [2]}, instruction_keys={"obs/instruction/goal": [1]}, action_shape=[1]
)


def make_wam(kind: str = "gru", seed: int = 0) -> JointWAM:
    torch.manual_seed(seed)
    return JointWAM(SCHEMA, model_cfg("joint", trunk=TrunkCfg(kind=kind, hidden=16, layers=2), head_hidden=16))


def histories(batch: int, history: int = 3, seed: int = 1) -> Sequences:
    """Random real histories (B, H, ·), every row a step, no termination."""
    generator = torch.Generator().manual_seed(seed)
    return Sequences(
        states=torch.randn(batch, history, 2, generator=generator),
        instruction=torch.randn(batch, history, 1, generator=generator),
        actions=torch.randn(batch, history, 1, generator=generator),
        rewards=torch.randn(batch, history, generator=generator),
        terminated=torch.zeros(batch, history),
        contacts=torch.zeros(batch, history, 0),
    )


@torch.no_grad()
def set_constant(head: torch.nn.Module, bias: list[float]) -> None:
    """Make an MLP head output ``bias`` whatever its input (last layer's weights zero)."""
    last = head[-1] if isinstance(head, torch.nn.Sequential) else head.net[-1]
    last.weight.zero_()
    last.bias.copy_(torch.tensor(bias))


def test_gae_worked_out_by_hand():
    # gamma = lam = 0.5; rewards [1, 2, 3]; values [0.5, 1, 1.5]; bootstrap V_3 = 2
    # env 0, no done: delta_2 = 3 + 0.5 * 2 - 1.5 = 2.5 -> A_2 = 2.5
    #   delta_1 = 2 + 0.5 * 1.5 - 1 = 1.75 -> A_1 = 1.75 + 0.25 * 2.5 = 2.375
    #   delta_0 = 1 + 0.5 * 1 - 0.5 = 1 -> A_0 = 1 + 0.25 * 2.375 = 1.59375
    # env 1, done at step 1: A_2 = 2.5; delta_1 = 2 - 1 = 1 -> A_1 = 1 (nothing after the end);
    #   delta_0 = 1 + 0.5 * 1 - 0.5 = 1 -> A_0 = 1 + 0.25 * 1 = 1.25
    rewards = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    values = torch.tensor([[0.5, 0.5], [1.0, 1.0], [1.5, 1.5]])
    dones = torch.tensor([[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
    returns, advantages = gae(rewards, values, dones, torch.tensor([2.0, 2.0]), gamma=0.5, lam=0.5)
    torch.testing.assert_close(advantages, torch.tensor([[1.59375, 1.25], [2.375, 1.0], [2.5, 2.5]]))
    torch.testing.assert_close(returns, advantages + values)


def test_rollouts_never_start_from_terminated_states():
    start = histories(6)
    start.states[:, -1, 0] = torch.arange(6.0) * 100  # each window's branch state is recognizable
    start.terminated[1, 0] = 1.0  # the episode ended before the last row: past its end
    start.terminated[3, 1] = 1.0
    start.is_final = torch.zeros(6, 3)
    start.is_final[4, -1] = 1.0  # the last row is a final state s_T
    start.terminated[5, -1] = 1.0  # terminated by the action taken at the last row: the state itself is valid
    assert branch_points(start).tolist() == [True, False, True, False, False, True]
    wam = make_wam()
    rollout = imagine(wam, DynamicsEnsemble(wam, 2), start, ImaginationCfg(num_envs=12, horizon=3), 0.99, 0.95)
    assert sorted(set(rollout.starts.tolist())) == [0, 2, 5]
    assert sorted(set(rollout.observations["world_model"][0, :, 0].tolist())) == [0.0, 200.0, 500.0]
    start.terminated[[0, 2], 0] = 1.0
    start.is_final[5, 1] = 1.0
    with pytest.raises(ValueError, match="no start window"):
        imagine(wam, DynamicsEnsemble(wam, 2), start, ImaginationCfg(num_envs=4, horizon=2), 0.99, 0.95)


def known_heads(ensemble: DynamicsEnsemble, means: list[list[float]], reward: float, termination: float) -> None:
    """Member ``m`` predicts the normalized change ``means[m]``, log std 0, the normalized ``reward`` and the
    termination logit ``termination``."""
    for head, mean in zip(ensemble.members(), means, strict=True):
        set_constant(head, [*mean, 0.0, 0.0, reward, termination])


def test_disagreement_penalty_and_members_on_known_heads():
    wam = make_wam()
    wam.normalizers.reward.mean.fill_(1.0)
    wam.normalizers.reward.std.fill_(2.0)  # normalized reward 0.5 -> 0.5 * 2 + 1 = 2 in physical units
    ensemble = DynamicsEnsemble(wam, 3)
    means = [[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]]
    known_heads(ensemble, means, reward=0.5, termination=-20.0)
    start = histories(4)
    cfg = ImaginationCfg(num_envs=6, horizon=2, uncertainty_penalty=0.5)
    rollout = imagine(wam, ensemble, start, cfg, gamma=0.9, lam=0.95)
    # population std over the members: dim 0 of [0, 2, 1] -> sqrt(2/3); dim 1 of [0, 0, 3] -> sqrt(2); their mean
    expected_u = (math.sqrt(2.0 / 3.0) + math.sqrt(2.0)) / 2
    torch.testing.assert_close(rollout.disagreement, torch.full((2, 6), expected_u))
    torch.testing.assert_close(rollout.model_rewards, torch.full((2, 6), 2.0))
    torch.testing.assert_close(rollout.rewards, torch.full((2, 6), 2.0 - 0.5 * expected_u))
    # env e follows member e mod 3: s_1 = s_0 + its change (delta normalizer mean 0, std 1)
    assert rollout.members.tolist() == [0, 1, 2, 0, 1, 2]
    states = rollout.observations["world_model"]
    torch.testing.assert_close(states[1] - states[0], torch.tensor(means)[rollout.members])
    # one member: no disagreement, no penalty
    single = DynamicsEnsemble(wam, 1)
    known_heads(single, means[:1], reward=0.5, termination=-20.0)
    alone = imagine(wam, single, start, cfg, gamma=0.9, lam=0.95)
    assert torch.equal(alone.disagreement, torch.zeros(2, 6)) and torch.equal(alone.rewards, alone.model_rewards)


def test_termination_head_ends_envs_and_the_horizon_cap_bootstraps():
    wam = make_wam()
    wam.normalizers.reward.std.fill_(1.0)
    set_constant(wam.value_head, [4.0])  # V = 4 everywhere
    ensemble = DynamicsEnsemble(wam, 2)
    start, gamma = histories(3), 0.9
    cfg = ImaginationCfg(num_envs=4, horizon=3, uncertainty_penalty=0.0)
    known_heads(ensemble, [[0.1, 0.0], [0.1, 0.0]], reward=1.0, termination=20.0)  # terminates at once
    ended = imagine(wam, ensemble, start, cfg, gamma=gamma, lam=1.0)
    assert ended.dones[0].tolist() == [1.0] * 4 and ended.alive[0].all() and not ended.alive[1:].any()
    assert ended.num_transitions == 4
    torch.testing.assert_close(ended.returns[0], torch.full((4,), 1.0))  # r_0 alone: no bootstrap past the end
    known_heads(ensemble, [[0.1, 0.0], [0.1, 0.0]], reward=1.0, termination=-20.0)  # never terminates
    capped = imagine(wam, ensemble, start, cfg, gamma=gamma, lam=1.0)
    assert capped.alive.all() and capped.dones.sum() == 0
    known_heads(ensemble, [[0.1, 0.0], [0.1, 0.0]], reward=1.0, termination=-1.0)  # p = 0.27 at every step
    assert imagine(wam, ensemble, start, cfg, gamma=gamma, lam=1.0).dones.sum() == 0
    cfg.done_threshold = 0.25
    assert imagine(wam, ensemble, start, cfg, gamma=gamma, lam=1.0).dones[0].tolist() == [1.0] * 4
    cfg.done_threshold = 0.5
    # lam = 1: G_t = sum_{i < 3 - t} gamma^i r + gamma^(3 - t) V(s_3), V = 4
    expected = [sum(gamma**i for i in range(3 - t)) + gamma ** (3 - t) * 4.0 for t in range(3)]
    torch.testing.assert_close(capped.returns, torch.tensor(expected)[:, None].expand(3, 4))
    torch.testing.assert_close(capped.advantages, capped.returns - 4.0)


@pytest.mark.parametrize("kind", ["gru", "mlp"])
def test_stored_inputs_reproduce_log_probs_and_values(kind):
    """What PPO's update recomputes from the stored observations (and a GRU's stored hidden states) equals what the
    rollout recorded: the actions' log-probabilities and the values; shapes and devices follow the start batch."""
    wam = make_wam(kind)
    start = histories(5, history=4)
    cfg = ImaginationCfg(num_envs=7, horizon=4)
    rollout = imagine(wam, DynamicsEnsemble(wam, 3), start, cfg, 0.99, 0.95, generator=torch.Generator().manual_seed(0))
    horizon, n = 4, 7
    obs = rollout.observations
    assert obs["world_model"].shape == (horizon, n, 2) and obs["instruction"].shape == (horizon, n, 1)
    assert obs["previous_action"].shape == (horizon, n, 1) and rollout.actions.shape == (horizon, n, 1)
    for name in ("log_probs", "values", "rewards", "dones", "returns", "advantages", "disagreement"):
        value = getattr(rollout, name)
        assert value.shape == (horizon, n) and value.device == start.states.device, name
    torch.testing.assert_close(obs["previous_action"][1:], rollout.actions[:-1])  # a_{k-1} of the next step
    starts = rollout.starts
    torch.testing.assert_close(obs["previous_action"][0], start.actions[starts, -2])  # a_{H-2}: the branch's own
    with torch.no_grad():
        tokens = wam.tokens(obs["world_model"], obs["instruction"], obs["previous_action"])  # (T, N, D)
        if kind == "gru":
            assert rollout.hidden_states.shape == (horizon, 1, n, 16)
            features = torch.stack(
                [wam.encode(tokens[k][:, None], rollout.hidden_states[k])[0][:, 0] for k in range(4)]
            )
            previous = previous_actions(start.actions[starts])
            history = wam.tokens(start.states[starts, :-1], start.instruction[starts, :-1], previous[:, :-1])
            torch.testing.assert_close(rollout.hidden_states[0], wam.encode(history)[1])
        else:
            assert rollout.hidden_states is None
            features = wam.encode(tokens)[0]
        policy = wam.policy(features)
    torch.testing.assert_close(policy.log_prob(rollout.actions).sum(-1), rollout.log_probs)
    torch.testing.assert_close(wam.value(features)[..., 0], rollout.values)
    torch.testing.assert_close(policy.mean, rollout.action_mean)


def test_imagination_changes_no_normalizer_parameter_or_hidden_state():
    wam = make_wam()
    generator = torch.Generator().manual_seed(3)
    for normalizer in (wam.normalizers.state, wam.normalizers.delta, wam.normalizers.action, wam.normalizers.reward):
        normalizer.mean.copy_(torch.randn(normalizer.mean.shape, generator=generator))
        normalizer.std.copy_(torch.rand(normalizer.std.shape, generator=generator) + 0.5)
    actor = WamActor(wam)
    actor.hidden_state = torch.randn(1, 9, 16, generator=generator)
    saved_hidden = actor.hidden_state.clone()
    before = {name: value.clone() for name, value in wam.state_dict().items()}
    ensemble = DynamicsEnsemble(wam, 2)
    rollout = imagine(wam, ensemble, histories(4), ImaginationCfg(num_envs=8, horizon=5), 0.99, 0.95, actor=actor)
    assert rollout.num_transitions > 0
    after = wam.state_dict()
    for name, value in before.items():
        assert torch.equal(after[name], value), name
    assert torch.equal(actor.hidden_state, saved_hidden)


def test_task_rewards_and_bad_reward_sources():
    wam = make_wam()
    ensemble = DynamicsEnsemble(wam, 2)
    cfg = ImaginationCfg(num_envs=4, horizon=3, reward_source="task", uncertainty_penalty=0.0)

    def reward_fn(states, actions, next_states, instruction, terminated):
        return next_states[:, 0] - instruction[:, 0] - 5.0 * terminated  # on the predicted next state and done

    known_heads(ensemble, [[0.0, 0.0], [0.0, 0.0]], reward=0.0, termination=-20.0)
    rollout = imagine(wam, ensemble, histories(2), cfg, 0.99, 0.95, reward_fn=reward_fn)
    states, goal = rollout.observations["world_model"], rollout.observations["instruction"]
    torch.testing.assert_close(rollout.rewards[:-1], states[1:, :, 0] - goal[1:, :, 0])
    known_heads(ensemble, [[0.5, 0.0], [0.5, 0.0]], reward=0.0, termination=20.0)  # every env ends at step 0
    ended = imagine(wam, ensemble, histories(2), cfg, 0.99, 0.95, reward_fn=reward_fn)
    first, goal = ended.observations["world_model"][0, :, 0], ended.observations["instruction"][0, :, 0]
    torch.testing.assert_close(ended.rewards[0], first + 0.5 - goal - 5.0)  # s_1 = s_0 + 0.5, terminated
    with pytest.raises(ValueError, match="reward_fn"):
        imagine(wam, ensemble, histories(2), cfg, 0.99, 0.95)
    cfg.reward_source = "oracle"
    with pytest.raises(ValueError, match="reward_source"):
        imagine(wam, ensemble, histories(2), cfg, 0.99, 0.95)


def test_ensemble_loss_trains_the_extra_heads_only():
    wam = make_wam()
    ensemble = DynamicsEnsemble(wam, 3)
    loss, terms = ensemble_loss(wam, ensemble, histories(4, history=5), LossCfg())
    loss.backward()
    assert set(terms) == {"dynamics_nll", "reward", "termination"}
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ensemble.extra.parameters())
    assert all(p.grad is None for p in wam.parameters())  # neither the trunk nor the WAM's own heads
    assert len(list(ensemble.parameters())) == len(list(ensemble.extra.parameters()))  # the WAM is not a submodule


def test_schedule_and_batch_size():
    cfg = ImaginationCfg(enabled=True, warmup_iterations=10, batch_ratio=0.25)
    assert not imagination_active(cfg, 9) and imagination_active(cfg, 10)
    assert not imagination_active(ImaginationCfg(warmup_iterations=0), 100)  # off by default
    assert imagined_batch_size(cfg, 96) == 24


def test_selected_transitions_are_alive_and_match_their_steps():
    wam = make_wam()
    ensemble = DynamicsEnsemble(wam, 2)
    known_heads(ensemble, [[0.1, 0.0], [0.0, 0.2]], reward=0.0, termination=-20.0)  # no env terminates
    start = histories(3)
    rollout = imagine(wam, ensemble, start, ImaginationCfg(num_envs=5, horizon=4), 0.99, 0.95)
    rollout.alive[2:, 1] = False  # as if env 1 had terminated at step 1
    indices = rollout.select(100)
    assert len(indices) == 5 * 4 - 2 and rollout.alive.flatten()[indices].all()
    picked = rollout.select(6, generator=torch.Generator().manual_seed(0))
    assert len(picked) == 6 and len(set(picked.tolist())) == 6
    fields = rollout.transitions(picked)
    steps, envs = picked // 5, picked % 5
    torch.testing.assert_close(fields["log_probs"], rollout.log_probs[steps, envs])
    torch.testing.assert_close(fields["observations"]["world_model"], rollout.observations["world_model"][steps, envs])
    torch.testing.assert_close(fields["hidden_states"], rollout.hidden_states[steps, :, envs].transpose(0, 1))
    with torch.no_grad():  # one GRU step from the stored memory reproduces the stored value
        obs = fields["observations"]
        tokens = wam.tokens(obs["world_model"], obs["instruction"], obs["previous_action"])
        features = wam.encode(tokens[:, None], fields["hidden_states"])[0][:, 0]
    torch.testing.assert_close(wam.value(features)[:, 0], fields["values"])
