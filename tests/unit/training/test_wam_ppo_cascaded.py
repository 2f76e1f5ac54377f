"""Fine-tuning a pretrained cascaded WAM with WamPPO (:mod:`wam_ppo_synthetic`, no simulator): its policy acts as
it does offline, the critic warm-up freezes the action head while the world-model steps train the world model (the
policy's input), PPO then moves the action head, save -> load restores the whole cascaded WAM, the ONNX copy acts as
the actor, and what cannot work is refused in one line."""

from __future__ import annotations

import pytest
import torch
from omegaconf import OmegaConf
from test_wam_ppo import env_schema
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect

from wam_isaac.models.config import TrunkCfg, model_cfg
from wam_isaac.models.rl_adapters import CascadedActor, flatten_observations
from wam_isaac.models.schema import WamSchema
from wam_isaac.models.wam import CascadedWAM
from wam_isaac.training.checkpoint import save_checkpoint
from wam_isaac.training.config import TrainModelCfg
from wam_isaac.training.wam_ppo import PretrainedCheckpointError


def write_cascaded_checkpoint(path, schema: WamSchema, trunk: str = "mlp") -> CascadedWAM:
    cfg = TrainModelCfg(data="d", out="o", model=model_cfg("cascaded", trunk=TrunkCfg(kind=trunk, hidden=16, layers=2)))
    cfg.model.head_hidden, cfg.model.policy_hidden, cfg.model.cascade_horizon = 16, 16, 3
    torch.manual_seed(11)
    model = CascadedWAM(schema, cfg.model)
    model.normalizers.state.mean.fill_(0.25)  # a fitted normalizer, to be found again after loading
    model.normalizers.action.std.fill_(0.5)
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    save_checkpoint(path, {"config": config, "schema": schema.to_dict(), "model": model.state_dict()})
    return model


def parameters(module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in module.parameters()]


def moved(before, module) -> bool:
    after = list(module.parameters())
    assert len(after) == len(before)
    return any(not torch.equal(a, b) for a, b in zip(before, after, strict=True))


@pytest.fixture
def cascaded(tmp_path):
    path = tmp_path / "cascaded.pt"
    return path, write_cascaded_checkpoint(path, env_schema())


def test_actor_acts_as_the_pretrained_cascaded_wam(cascaded):
    path, pretrained = cascaded
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=3)
    alg = build_algorithm(env, pretrained_checkpoint=str(path), shared_critic=False)
    assert isinstance(alg.actor, CascadedActor) and not alg.actor.is_recurrent
    assert alg.wam is alg.actor.cascaded.world_model, "the world-model steps train the cascaded WAM's world model"
    obs = env.get_observations()
    flat = flatten_observations(obs, alg.wam.schema)
    state, goal, previous = (flat[g][:, None] for g in ("world_model", "instruction", "previous_action"))
    with torch.no_grad():
        expected = pretrained.act(state, goal, previous)  # the offline model on a one-step history
        torch.testing.assert_close(alg.actor(flat), expected)
        # with an MLP world model the policy at every step of a sequence is the one-step policy at that step
        states, goals = torch.randn(4, 5, state.shape[-1]), torch.randn(4, 5, goal.shape[-1])
        actions, before = torch.randn(4, 5, previous.shape[-1]), torch.randn(4, previous.shape[-1])
        sequence = pretrained.act_sequence(states, goals, actions, before)
        previous_steps = torch.cat((before[:, None], actions[:, :-1]), 1)
        for t in (0, 4):  # the first step acts after ``before``, not after zeros
            step = pretrained.policy_at_last(states[:, t : t + 1], goals[:, t : t + 1], previous_steps[:, t : t + 1])
            torch.testing.assert_close(sequence.mean[:, t], step.mean)
            torch.testing.assert_close(sequence.stddev[:, t], step.stddev)


def test_warmup_freezes_the_action_head_world_model_learns_then_ppo_moves_the_policy(cascaded):
    path, _ = cascaded
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=1)
    alg = build_algorithm(env, pretrained_checkpoint=str(path), shared_critic=False, critic_warmup_iterations=1)
    head, world_model = alg.actor.cascaded.action_head, alg.wam
    assert {id(p) for p in alg.frozen_in_warmup} == {id(p) for p in head.parameters()}
    critic = parameters(alg.critic)
    collect(alg, env)
    head_before, world_before = parameters(head), parameters(world_model)
    losses = alg.update()
    assert not moved(head_before, head), "the action head moved during the critic warm-up"
    assert moved(world_before, world_model), "the world-model steps must train the world model"
    assert moved(critic, alg.critic), "the MLP critic must learn in the warm-up"
    assert losses["world_model_kl"] > 0.0, "the world-model steps change the policy's input, so the policy"
    collect(alg, env)
    alg.update()
    assert moved(head_before, head), "after the warm-up PPO trains the action head"


def test_save_then_load_restores_the_cascaded_wam(cascaded, tmp_path):
    path, _ = cascaded
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=2)
    alg = build_algorithm(env, pretrained_checkpoint=str(path), shared_critic=False)
    for _ in range(2):
        collect(alg, env)
        alg.update()
    saved = alg.save()
    assert saved["wam_model_cfg"]["kind"] == "cascaded"
    assert any(k.startswith("action_head.") for k in saved["wam_state_dict"])
    fresh = build_algorithm(
        SyntheticPushEnv(num_envs=8, episode_length=10, seed=9), pretrained_checkpoint=str(path), shared_critic=False
    )
    assert fresh.load(saved, None, strict=True)
    trained = alg.actor.cascaded.state_dict()
    assert any(not torch.equal(v, write_cascaded_checkpoint(tmp_path / "x.pt", env_schema()).state_dict()[k])
               for k, v in trained.items()), "two updates must have changed the pretrained WAM"  # fmt: skip
    for name, value in trained.items():
        assert torch.equal(value, fresh.actor.cascaded.state_dict()[name]), name


def test_exported_policy_acts_as_the_actor(cascaded, tmp_path):
    """rsl-rl's export path (``as_onnx``) on the cascaded actor: onnxruntime's actions equal the actor's mean."""
    import onnxruntime

    from wam_isaac.export.onnx_policy import export_policy_onnx

    path, _ = cascaded
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=4)
    alg = build_algorithm(env, pretrained_checkpoint=str(path), shared_critic=False)
    flat = flatten_observations(env.get_observations(), alg.wam.schema)
    inputs = torch.cat([flat[g] for g in ("world_model", "instruction", "previous_action")], dim=-1)
    entry = export_policy_onnx(alg.actor, tmp_path / "policy.onnx")
    assert entry["recurrent"] is None and entry["model_class"] == "CascadedActor"
    session = onnxruntime.InferenceSession(str(tmp_path / "policy.onnx"), providers=["CPUExecutionProvider"])
    (actions,) = session.run(None, {"obs": inputs.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(actions), alg.actor(flat), atol=1e-5, rtol=1e-5)


def test_what_cannot_fine_tune_is_refused_in_one_line(cascaded, tmp_path):
    path, _ = cascaded
    env = SyntheticPushEnv(num_envs=4)
    with pytest.raises(PretrainedCheckpointError, match="shared_critic=false") as error:
        build_algorithm(env, pretrained_checkpoint=str(path))  # the shared critic is a value head it lacks
    assert "\n" not in str(error.value) and error.value.exit_code == 2
    write_cascaded_checkpoint(tmp_path / "gru.pt", env_schema(), trunk="gru")
    with pytest.raises(PretrainedCheckpointError, match="'gru' world-model trunk.*model.trunk.kind=mlp") as error:
        build_algorithm(env, pretrained_checkpoint=str(tmp_path / "gru.pt"), shared_critic=False)
    assert "\n" not in str(error.value)


def test_wam_train_refuses_the_shared_critic_before_any_simulator(cascaded, monkeypatch, capsys, tmp_path):
    from wam_isaac.cli import main

    path, _ = cascaded
    monkeypatch.chdir(tmp_path)
    args = ["train", "--task", "WAM-Cartpole", "--num_envs", "4", "--agent", "rsl_rl_wam_cfg_entry_point"]
    with pytest.raises(SystemExit) as exit_:
        main([*args, f"agent.algorithm.pretrained_checkpoint={path}"])
    assert exit_.value.code == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1 and "cascaded WAM, which has no value head" in errors[0], errors
    assert "agent.algorithm.shared_critic=false" in errors[0]
    assert not (tmp_path / "logs").exists()


def test_actor_without_an_instruction_group_acts_as_the_model():
    """A task without an instruction (Cartpole): the actor reads no ``instruction`` group and acts as the model on a
    one-step history with an empty instruction."""
    data = env_schema().to_dict()
    data["instruction_keys"] = {}
    schema = WamSchema.from_dict(data)
    cfg = model_cfg("cascaded", trunk=TrunkCfg(kind="mlp", hidden=16, layers=2))
    cfg.head_hidden, cfg.policy_hidden, cfg.cascade_horizon = 16, 16, 2
    torch.manual_seed(3)
    model = CascadedWAM(schema, cfg)
    actor = CascadedActor(model)
    obs = {"world_model": torch.randn(5, schema.state_dim), "previous_action": torch.randn(5, schema.action_dim)}
    with torch.no_grad():
        expected = model.act(obs["world_model"][:, None], torch.zeros(5, 1, 0), obs["previous_action"][:, None])
        torch.testing.assert_close(actor(obs), expected)
        assert actor.output_std.shape == expected.shape
