"""WamPPO without a simulator (:mod:`wam_ppo_synthetic`): one update equals rsl-rl PPO's when the world model is
off, the optimizer holds each parameter once, the critic warm-up freezes the policy, save -> load restores
everything (a checkpoint from before beta-NLL resumes on the plain NLL), a pretrained checkpoint is fine-tuned (or
refused by key), and inside rsl-rl's OnPolicyRunner the held-out prediction error falls."""

from __future__ import annotations

import copy
import warnings

import pytest
import torch
from rsl_rl.algorithms import PPO
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect, runner_cfg

from wam_isaac.cli.errors import UsageError
from wam_isaac.models.config import TrunkCfg, model_cfg
from wam_isaac.models.schema import WamSchema
from wam_isaac.models.wam import JointWAM
from wam_isaac.training.checkpoint import save_checkpoint
from wam_isaac.training.config import TrainModelCfg
from wam_isaac.training.wam_ppo import PretrainedCheckpointError, build_wam

PPO_ARGS = dict(
    num_learning_epochs=2,
    num_mini_batches=2,
    clip_param=0.2,
    gamma=0.99,
    lam=0.95,
    value_loss_coef=1.0,
    entropy_coef=0.005,
    learning_rate=1.0e-3,
    max_grad_norm=1.0,
    use_clipped_value_loss=True,
    schedule="adaptive",
    desired_kl=0.01,
    device="cpu",
)
"""The PPO settings of :func:`runner_cfg`."""


def parameters(*modules) -> list[torch.Tensor]:
    return [p.detach().clone() for module in modules for p in module.parameters()]


def test_zero_world_model_weight_update_equals_plain_ppo():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, seed=0)
    alg = build_algorithm(env, world_model_weight=0.0, shared_critic=False)
    collect(alg, env)
    alg.actor.hidden_state, alg.actor._distribution = None, None  # inference tensors cannot be deep-copied
    alg.actor.clear_cache()
    reference = PPO(copy.deepcopy(alg.actor), copy.deepcopy(alg.critic), copy.deepcopy(alg.storage), **PPO_ARGS)
    before = parameters(alg.actor, alg.critic)
    torch.manual_seed(1)
    losses = alg.update()
    torch.manual_seed(1)
    expected = reference.update()
    after, reference_after = parameters(alg.actor, alg.critic), parameters(reference.actor, reference.critic)
    assert any(not torch.equal(a, b) for a, b in zip(before, after, strict=True)), "the update must move something"
    for mine, theirs in zip(after, reference_after, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-7, rtol=0)
    assert alg.learning_rate == reference.learning_rate
    assert losses == pytest.approx(expected, abs=1e-7)
    assert not any(key.startswith("world_model") for key in losses)


def test_optimizer_holds_each_parameter_once_and_clips_each_once():
    env = SyntheticPushEnv(num_envs=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # torch warns about duplicate parameters in an optimizer
        alg = build_algorithm(env, shared_critic=True)
    unique = {id(p) for p in chain_parameters(alg)}
    in_optimizer = [p for group in alg.optimizer.param_groups for p in group["params"]]
    assert len(in_optimizer) == len(unique) == len({id(p) for p in in_optimizer})
    assert len(unique) == len(list(alg.wam.parameters())), "the shared critic adds no parameter of its own"
    assert alg.critic_only == []
    separate = build_algorithm(env, shared_critic=False)
    count = len(list(separate.wam.parameters())) + len(list(separate.critic.parameters()))
    assert sum(len(g["params"]) for g in separate.optimizer.param_groups) == count


def chain_parameters(alg):
    return [*alg.actor.parameters(), *alg.critic.parameters()]


def test_critic_warmup_freezes_the_policy_then_releases_it():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=1)
    alg = build_algorithm(env, critic_warmup_iterations=1)
    wam = alg.wam
    policy = (wam.trunk, wam.action_head)
    collect(alg, env)
    before_policy, before_value, before_dynamics = (
        parameters(*policy),
        parameters(wam.value_head),
        parameters(wam.dynamics),
    )
    alg.update()
    for a, b in zip(before_policy, parameters(*policy), strict=True):
        assert torch.equal(a, b), "the actor moved during the critic warm-up"
    assert any(not torch.equal(a, b) for a, b in zip(before_value, parameters(wam.value_head), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before_dynamics, parameters(wam.dynamics), strict=True))
    collect(alg, env)
    alg.update()
    assert any(not torch.equal(a, b) for a, b in zip(before_policy, parameters(*policy), strict=True))


def test_save_then_load_restores_wam_replay_optimizer_and_counters(tmp_path):
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=2)
    alg = build_algorithm(env)
    for _ in range(2):
        collect(alg, env)
        alg.update()
    assert alg.normalizers_fitted and alg.iteration == 2
    alg.loss_cfg.dynamics_beta = 0.25  # not the default (0.5) a fresh algorithm starts with
    torch.save({**alg.save(), "iter": 2, "infos": None}, tmp_path / "model_2.pt")
    loaded = torch.load(tmp_path / "model_2.pt", weights_only=False)
    assert set(loaded) >= {"wam_state_dict", "wam_schema", "wam_model_cfg", "replay_state_dict", "optimizer_state_dict"}
    torch.manual_seed(5)
    fresh = build_algorithm(SyntheticPushEnv(num_envs=8, episode_length=10, seed=9))
    assert fresh.load(loaded, None, strict=True)
    for name, value in alg.wam.state_dict().items():  # parameters and normalizers
        assert torch.equal(value, fresh.wam.state_dict()[name]), name
    for name, value in alg.replay.state_dict().items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(fresh.replay.state_dict()[name])), name
    mine, theirs = alg.optimizer.state_dict(), fresh.optimizer.state_dict()
    assert mine["param_groups"] == theirs["param_groups"]
    for index, state in mine["state"].items():
        for key, value in state.items():
            assert torch.equal(value, theirs["state"][index][key]), (index, key)
    assert fresh.iteration == 2 and fresh.normalizers_fitted and fresh.loss_cfg.dynamics_beta == 0.25
    # a checkpoint from before beta-NLL (no dynamics_beta) resumes on the plain NLL it trained with; a load that
    # does not resume the iteration (a new run from its weights) keeps its own beta
    state = {key: value for key, value in loaded["wam_ppo_state"].items() if key != "dynamics_beta"}
    before_beta_nll = build_algorithm(SyntheticPushEnv(num_envs=8, episode_length=10, seed=9))
    assert before_beta_nll.loss_cfg.dynamics_beta == 0.5
    assert before_beta_nll.load({**loaded, "wam_ppo_state": state}, None, strict=True)
    assert before_beta_nll.loss_cfg.dynamics_beta == 0.0
    weights_only = build_algorithm(SyntheticPushEnv(num_envs=8, episode_length=10, seed=9))
    assert not weights_only.load(loaded, {"actor": True, "critic": True, "iteration": False}, strict=True)
    assert weights_only.loss_cfg.dynamics_beta == 0.5 and weights_only.iteration == 0
    # Isaac Lab's --no-resume_optimizer_state: no WamPPO keys in load_cfg, optimizer not loaded, the rest is
    other = build_algorithm(SyntheticPushEnv(num_envs=8, episode_length=10, seed=9))
    no_optimizer = {"actor": True, "critic": True, "optimizer": False, "iteration": True, "rnd": True}
    assert other.load(loaded, no_optimizer, strict=True)
    assert other.optimizer.state_dict()["state"] == {}
    size = alg.replay.size
    assert other.replay.size == size
    assert torch.equal(other.replay.states[:size], alg.replay.states[alg.replay.rows(torch.arange(size))])


def write_joint_checkpoint(path, schema: WamSchema, reward_std: float = 1.0) -> JointWAM:
    from omegaconf import OmegaConf

    cfg = TrainModelCfg(data="d", out="o", model=model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=16, layers=2)))
    cfg.model.head_hidden = 16
    model = JointWAM(schema, cfg.model)
    model.normalizers.state.mean.fill_(0.25)  # a fitted normalizer, to be found again after loading
    model.normalizers.reward.std.fill_(reward_std)
    save_checkpoint(
        path,
        {
            "config": OmegaConf.to_container(OmegaConf.structured(cfg)),
            "schema": schema.to_dict(),
            "model": model.state_dict(),
        },
    )
    return model


def env_schema() -> WamSchema:
    env = SyntheticPushEnv(num_envs=2)
    return WamSchema.from_observations(env.get_observations(), [env.num_actions])


def test_pretrained_joint_wam_is_fine_tuned_with_its_normalizers(tmp_path):
    schema = env_schema()
    contacts = WamSchema(**{**schema.to_dict(), "contact_keys": {"labels/contact/tip/flag": [1]}})
    pretrained = write_joint_checkpoint(tmp_path / "joint.pt", contacts)  # contact labels: not observations
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=3)
    alg = build_algorithm(env, pretrained_checkpoint=str(tmp_path / "joint.pt"))
    for name, value in pretrained.state_dict().items():
        assert torch.equal(value, alg.wam.state_dict()[name]), name
    assert alg.normalizers_fitted
    collect(alg, env)
    alg.update()
    assert torch.equal(alg.wam.normalizers.state.mean, pretrained.normalizers.state.mean), "normalizers refitted"


@pytest.mark.parametrize(
    ("change", "key"),
    [
        (lambda d: d["state_keys"].pop("obs/world_model/pos"), "obs/world_model/pos"),
        (lambda d: d["instruction_keys"].update({"obs/instruction/goal": [3]}), "obs/instruction/goal"),
    ],
)
def test_pretrained_checkpoint_for_other_observations_is_refused_by_key(tmp_path, change, key):
    data = env_schema().to_dict()
    change(data)
    write_joint_checkpoint(tmp_path / "other.pt", WamSchema.from_dict(data))
    with pytest.raises(PretrainedCheckpointError) as error:
        build_wam(env_schema(), {"pretrained_checkpoint": str(tmp_path / "other.pt")}, "cpu")
    message = str(error.value)
    assert key in message and "\n" not in message
    assert isinstance(error.value, UsageError) and error.value.exit_code == 2
    with pytest.raises(PretrainedCheckpointError, match="does not exist"):
        build_wam(env_schema(), {"pretrained_checkpoint": str(tmp_path / "missing.pt")}, "cpu")


def test_on_policy_runner_learns_the_world_model_on_held_out_envs():
    from rsl_rl.runners import OnPolicyRunner

    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=16, episode_length=20, seed=5)
    runner = OnPolicyRunner(
        env,
        runner_cfg(
            world_model={
                "steps": 8,
                "batch_size": 32,
                "history": 4,
                "forecast": 4,
                "heldout_env_fraction": 0.25,
                "eval_horizon": 4,
            }
        ),
        log_dir=None,
        device="cpu",
    )
    alg = runner.alg
    ratios = []
    for _ in range(8):
        runner.learn(1)
        ratios.append(alg.world_model_metrics["WorldModel/ratio@4"])
    assert alg.replay.size == 40  # 8 iterations x 8 steps, capacity 40
    assert alg.iteration == 8
    # the held-out envs' 4-step error, relative to copy-last, falls as the world model trains
    assert ratios[-1] < 0.7 * ratios[0], ratios


def test_imagined_transitions_join_the_ppo_batch():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=6)
    imagination = {"enabled": True, "warmup_iterations": 1, "num_envs": 16, "horizon": 3, "ensemble_size": 2}
    alg = build_algorithm(env, imagination=imagination)
    extra = list(alg.ensemble.extra.parameters())
    in_optimizer = {id(p) for group in alg.optimizer.param_groups for p in group["params"]}
    assert extra and all(id(p) in in_optimizer for p in extra), "the extra dynamics heads must be trained"
    collect(alg, env)
    first = alg.update()
    assert "imagination_transitions" not in first  # imagination waits for its warm-up iteration
    collect(alg, env)
    state = {k: v.clone() for k, v in alg.wam.normalizers.state_dict().items()}
    losses = alg.update()
    # batch_ratio 0.5 of the 8 x 8 real transitions, if that many imagined ones are alive (16 envs x 3 steps)
    assert 0 < losses["imagination_transitions"] <= 32
    assert losses["world_model_ensemble_dynamics_nll"] > 0
    for name, value in alg.wam.normalizers.state_dict().items():
        assert torch.equal(value, state[name]), f"imagination changed the normalizer {name}"
    saved = alg.save()
    assert "ensemble_state_dict" in saved
    with pytest.raises(ValueError, match="shared critic"):
        build_algorithm(env, imagination=imagination, shared_critic=False)


def test_imagined_minibatches_match_the_real_ones_in_number():
    from types import SimpleNamespace

    from wam_isaac.training.wam_ppo import ImaginedSamples

    rollout = SimpleNamespace(advantages=torch.arange(12.0).reshape(3, 4))
    samples = ImaginedSamples(rollout, torch.tensor([0, 3, 5, 7, 11]))
    chunks = list(samples.minibatches(4, 2))  # 5 transitions into 4 minibatches, 2 epochs: 8 chunks, none empty
    assert len(chunks) == 8 and all(len(c) for c in chunks)
    assert sorted(torch.cat(chunks[:4]).tolist()) == [0, 1, 2, 3, 4]
    torch.testing.assert_close(samples.advantages.mean(), torch.tensor(0.0), atol=1e-6, rtol=0)


def test_multi_gpu_broadcast_and_reduce_touch_each_shared_tensor_once(monkeypatch):
    import wam_isaac.training.wam_ppo as wam_ppo

    alg = build_algorithm(SyntheticPushEnv(num_envs=4), shared_critic=True)
    broadcast, reduced = [], []
    monkeypatch.setattr(torch.distributed, "broadcast", lambda tensor, src: broadcast.append(tensor))
    monkeypatch.setattr(wam_ppo, "reduce_gradients_in_buckets", lambda params, *_: reduced.extend(params))
    alg.broadcast_parameters()
    alg.reduce_parameters()
    # the value head is in the actor's (the WAM's) state dict and the shared critic's: sent once
    assert len(broadcast) == len({t.data_ptr() for t in broadcast}) == len(alg.wam.state_dict())
    assert len(reduced) == len({id(p) for p in reduced}) == len(list(alg.wam.parameters()))
