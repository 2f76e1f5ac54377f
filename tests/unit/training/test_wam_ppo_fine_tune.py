"""Fine-tuning a pretrained joint WAM with WamPPO: the critic warm-up runs at ``learning_rate``, the policy then
learns at ``fine_tune_learning_rate``, which the adaptive schedule never exceeds (also after a resume), a run from
scratch keeps rsl-rl's schedule, and the pretrained value head is put in the env's reward units."""

from __future__ import annotations

import torch
from test_wam_ppo import env_schema, write_joint_checkpoint
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect


def test_policy_learns_at_the_fine_tune_rate_after_the_warmup_and_never_above_it(tmp_path):
    write_joint_checkpoint(tmp_path / "joint.pt", env_schema())
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=3)
    alg = build_algorithm(
        env, pretrained_checkpoint=str(tmp_path / "joint.pt"), fine_tune_learning_rate=1e-4, critic_warmup_iterations=1
    )
    assert alg.learning_rate == 1e-3, "the critic warm-up runs at learning_rate"
    obs = collect(alg, env)
    alg.update()
    assert alg.learning_rate == 1e-4 and [g["lr"] for g in alg.optimizer.param_groups] == [1e-4]
    kls, adapt = [], alg.adapt_learning_rate

    def record(old, new):
        with torch.inference_mode():
            kls.append(float(alg.actor.get_kl_divergence(old, new).mean()))
        adapt(old, new)

    alg.adapt_learning_rate = record
    rates = []
    for _ in range(3):
        obs = collect(alg, env, obs)
        alg.update()
        rates.append(alg.learning_rate)
    assert any(0.0 < kl < alg.desired_kl / 2 for kl in kls), "the schedule must have been asked to raise the rate"
    assert rates == [1e-4] * 3, rates
    saved = alg.save()
    resumed = build_algorithm(
        env, pretrained_checkpoint=str(tmp_path / "joint.pt"), fine_tune_learning_rate=1e-4, critic_warmup_iterations=1
    )
    resumed.learning_rate = 1e-3
    resumed.load(saved, None, strict=True)
    assert resumed.iteration == 4 and resumed.max_learning_rate == 1e-4 and resumed.learning_rate == 1e-4


def test_from_scratch_the_schedule_keeps_rsl_rl_ceiling():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=16, seed=0)
    alg = build_algorithm(env, fine_tune_learning_rate=1e-4, world_model_weight=0.0)
    obs = None
    for _ in range(2):
        obs = collect(alg, env, obs)
        alg.update()
    assert alg.max_learning_rate == 1e-2 and alg.learning_rate > 1e-3, alg.learning_rate


def test_pretrained_value_head_is_put_in_reward_units(tmp_path):
    schema = env_schema()
    pretrained = write_joint_checkpoint(tmp_path / "joint.pt", schema, reward_std=2.5)
    env = SyntheticPushEnv(num_envs=4)
    alg = build_algorithm(env, pretrained_checkpoint=str(tmp_path / "joint.pt"))
    features = torch.randn(32, 16)
    with torch.no_grad():
        torch.testing.assert_close(alg.wam.value(features), 2.5 * pretrained.value(features))
    for name, value in pretrained.state_dict().items():
        if not name.startswith("value_head."):
            assert torch.equal(value, alg.wam.state_dict()[name]), name


def test_load_pretrained_checks_the_file_before_any_simulator(tmp_path):
    """What ``wam train`` calls before it starts the simulator: a usage error (exit 2) naming the path."""
    import pytest

    from wam_isaac.cli.errors import UsageError
    from wam_isaac.training.wam_ppo_build import load_pretrained

    with pytest.raises(UsageError, match="missing.pt' does not exist"):
        load_pretrained(str(tmp_path / "missing.pt"))
    written = write_joint_checkpoint(tmp_path / "joint.pt", env_schema())
    assert load_pretrained(str(tmp_path / "joint.pt")).schema.to_dict() == written.schema.to_dict()
