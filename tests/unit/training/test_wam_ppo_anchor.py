"""WamPPO's anchor to the initial (pretrained) policy: the term equals the Gaussian KL(pi_anchor || pi) computed by
hand (on fixed means / stds, and on a recurrent minibatch whose trajectories end inside the rollout), weight 0 leaves
the update exactly as it was, the anchor is frozen, outside the optimizer and restored from checkpoints, its weight
decays after the critic warm-up, and a positive weight pulls the policy back towards the anchor."""

from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import pytest
import torch
from test_wam_ppo import env_schema, parameters, write_joint_checkpoint
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect

from wam_isaac.models.rl_adapters import WamActor
from wam_isaac.training.wam_ppo_epochs import PpoEpochs


def gaussian_kl(mu0: float, s0: float, mu1: float, s1: float) -> float:
    """KL(N(mu0, s0^2) || N(mu1, s1^2)) written out."""
    return math.log(s1 / s0) + (s0**2 + (mu0 - mu1) ** 2) / (2 * s1**2) - 0.5


class FixedPolicy:
    """A policy whose distribution is given (mean, std), each (N, A); records the forward's arguments."""

    get_kl_divergence = WamActor.get_kl_divergence

    def __init__(self, mean, std) -> None:
        self.output_distribution_params = (torch.tensor(mean), torch.tensor(std))
        self.calls = []

    def __call__(self, obs, masks=None, hidden_state=None):
        self.calls.append((obs, masks, hidden_state))


def test_anchor_term_is_the_gaussian_kl_from_the_anchor_to_the_policy():
    anchor = FixedPolicy([[0.0, 0.5], [1.0, -1.0]], [[1.0, 0.2], [0.5, 0.3]])
    policy = FixedPolicy([[1.0, 0.5], [1.0, 0.0]], [[2.0, 0.1], [0.5, 0.6]])
    batch = SimpleNamespace(observations="obs", masks="masks", hidden_states=("h_actor", "h_critic"))
    kl = PpoEpochs.anchor_kl(SimpleNamespace(anchor=anchor, actor=policy), batch)
    by_hand = (
        gaussian_kl(0.0, 1.0, 1.0, 2.0)  # log 2 + 2 / 8 - 1/2 = 0.4431
        + gaussian_kl(0.5, 0.2, 0.5, 0.1)
        + gaussian_kl(1.0, 0.5, 1.0, 0.5)  # 0
        + gaussian_kl(-1.0, 0.3, 0.0, 0.6)
    ) / 2
    assert float(kl) == pytest.approx(by_hand, rel=1e-6)
    assert gaussian_kl(0.0, 1.0, 1.0, 2.0) == pytest.approx(math.log(2) - 0.25)
    assert anchor.calls == [("obs", "masks", "h_actor")], "the anchor reads the minibatch with the actor's memory"


def perturb_policy(alg, scale: float = 0.3) -> None:
    """Move the action head away from the anchor (a known, seeded change)."""
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for p in alg.wam.action_head.parameters():
            p.add_(scale * torch.randn(p.shape, generator=generator))


def test_anchor_term_on_a_recurrent_minibatch_matches_the_formula_on_its_real_samples(tmp_path):
    write_joint_checkpoint(tmp_path / "joint.pt", env_schema())
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=5, seed=3)  # episodes end inside the 8-step rollout
    alg = build_algorithm(env, pretrained_checkpoint=str(tmp_path / "joint.pt"), anchor_kl_weight=1.0)
    collect(alg, env)
    assert alg.storage.dones.any(), "the rollout must contain episode ends (padded trajectories)"
    perturb_policy(alg)
    batch = next(alg.storage.recurrent_mini_batch_generator(alg.num_mini_batches, 1))
    alg.ppo_losses(batch, adapt_lr=False)
    mean1, std1 = (t.detach() for t in alg.actor.output_distribution_params)
    kl = alg.anchor_kl(batch)
    with torch.no_grad():
        alg.anchor(batch.observations, masks=batch.masks, hidden_state=batch.hidden_states[0])
    mean0, std0 = alg.anchor.output_distribution_params
    samples = alg.storage.num_envs * alg.storage.num_transitions_per_env // alg.num_mini_batches
    assert mean0.shape == mean1.shape and mean0.numel() == samples * env.num_actions, "padding must not count"
    by_hand = torch.log(std1 / std0) + (std0**2 + (mean0 - mean1) ** 2) / (2 * std1**2) - 0.5
    torch.testing.assert_close(kl.detach(), by_hand.sum(-1).mean(), atol=1e-6, rtol=1e-6)
    assert float(kl) > 1e-3, "the perturbed policy must differ from the anchor"


def test_zero_anchor_weight_leaves_the_update_exactly_unchanged():
    def run(with_idle_anchor: bool):
        torch.manual_seed(0)
        env = SyntheticPushEnv(num_envs=8, seed=0)
        alg = build_algorithm(env)
        if with_idle_anchor:  # an anchor that is evaluated but weighs 0
            alg.anchor = WamActor(copy.deepcopy(alg.wam)).requires_grad_(False)
        obs = None
        losses = []
        for _ in range(2):
            obs = collect(alg, env, obs)
            torch.manual_seed(1)
            losses.append(alg.update())
        return alg, losses

    plain, plain_losses = run(False)
    idle, idle_losses = run(True)
    assert plain.anchor is None and "anchor_kl" not in plain_losses[0]
    for mine, theirs in zip(parameters(idle.actor, idle.critic), parameters(plain.actor, plain.critic), strict=True):
        assert torch.equal(mine, theirs)
    assert idle.learning_rate == plain.learning_rate
    for mine, theirs in zip(idle_losses, plain_losses, strict=True):
        assert mine["anchor_weight"] == 0.0 and mine["anchor_kl"] > 0.0
        assert {k: v for k, v in mine.items() if not k.startswith("anchor")} == theirs


def test_anchor_is_frozen_outside_the_optimizer_and_restored_from_checkpoints(tmp_path):
    write_joint_checkpoint(tmp_path / "joint.pt", env_schema())
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, seed=3)
    kwargs = dict(pretrained_checkpoint=str(tmp_path / "joint.pt"), anchor_kl_weight=0.5)
    alg = build_algorithm(env, **kwargs)
    anchor_ids = {id(p) for p in alg.anchor.parameters()}
    optimized = {id(p) for group in alg.optimizer.param_groups for p in group["params"]}
    assert anchor_ids and not anchor_ids & optimized
    assert not any(p.requires_grad for p in alg.anchor.parameters())
    initial = parameters(alg.anchor)
    for before, now in zip(initial, parameters(alg.actor), strict=True):
        assert torch.equal(before, now), "the anchor is the pretrained policy"
    obs = None
    for _ in range(2):
        obs = collect(alg, env, obs)
        alg.update()
    assert all(torch.equal(a, b) for a, b in zip(initial, parameters(alg.anchor), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(initial, parameters(alg.actor), strict=True))
    saved = alg.save()
    resumed = build_algorithm(env, **kwargs)
    perturb_policy(resumed)
    resumed.anchor.wam.load_state_dict(resumed.wam.state_dict())  # a different anchor, replaced by the saved one
    resumed.load(saved, None, strict=True)
    for saved_anchor, loaded in zip(initial, parameters(resumed.anchor), strict=True):
        assert torch.equal(saved_anchor, loaded)


def test_anchor_weight_decays_linearly_after_the_critic_warmup():
    env = SyntheticPushEnv(num_envs=4)
    alg = build_algorithm(env, anchor_kl_weight=2.0, anchor_decay_iterations=4, critic_warmup_iterations=2)
    weights = []
    for iteration in range(8):
        alg.iteration = iteration
        weights.append(alg.anchor_weight)
    assert weights == [2.0, 2.0, 2.0, 1.5, 1.0, 0.5, 0.0, 0.0]
    constant = build_algorithm(env, anchor_kl_weight=2.0)
    constant.iteration = 100
    assert constant.anchor_weight == 2.0
    with pytest.raises(ValueError, match="anchor_kl_weight"):
        build_algorithm(env, anchor_kl_weight=-1.0)


def test_anchor_pulls_the_policy_back_towards_the_pretrained_one(tmp_path):
    write_joint_checkpoint(tmp_path / "joint.pt", env_schema())

    def kl_after_updates(weight: float) -> float:
        torch.manual_seed(0)
        env = SyntheticPushEnv(num_envs=8, seed=3)
        alg = build_algorithm(env, pretrained_checkpoint=str(tmp_path / "joint.pt"), anchor_kl_weight=1.0)
        alg.anchor_kl_weight = weight
        perturb_policy(alg, 0.1)
        obs = None
        for _ in range(2):
            obs = collect(alg, env, obs)
            torch.manual_seed(1)
            alg.update()
        flat = alg.flat(env.get_observations())
        with torch.no_grad():
            for policy in (alg.actor, alg.anchor):
                policy.reset(hidden_state=None)
                policy(flat)
        return float(
            alg.actor.get_kl_divergence(
                alg.anchor.output_distribution_params, alg.actor.output_distribution_params
            ).mean()
        )

    free, anchored = kl_after_updates(0.0), kl_after_updates(20.0)
    assert anchored < 0.5 * free, (anchored, free)  # measured: 0.048 against 0.549
