"""DAgger's behaviour policies without a simulator: a ``wam train-model`` joint WAM acting on its sliding window (the
executed previous action, windows restarted where an episode begins) and the expert mixture."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from omegaconf import OmegaConf

from wam_isaac.models import JointWAM, TrunkCfg, WamSchema, model_cfg
from wam_isaac.rollout.policies import ExpertMixture, WamCheckpointPolicy, is_wam_checkpoint, make_policy
from wam_isaac.training.checkpoint import save_checkpoint
from wam_isaac.training.config import TrainModelCfg

HISTORY, ENVS = 3, 2


def joint_checkpoint(path) -> JointWAM:
    """A small untrained joint WAM (GRU, history 3) over a 2-d state, a 1-d goal and 2-d actions, saved to ``path``."""
    schema = WamSchema(
        state_keys={"obs/world_model/pos": [2]}, instruction_keys={"obs/instruction/goal": [1]}, action_shape=[2]
    )
    cfg = TrainModelCfg(data="unused", out=str(path.parent), device="cpu")
    cfg.model = model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=16, layers=1), head_hidden=16)
    cfg.train.history = HISTORY
    torch.manual_seed(0)
    model = JointWAM(schema, cfg.model)
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    save_checkpoint(path, {"config": config, "schema": schema.to_dict(), "model": model.state_dict()})
    return model.eval()


def observations(step: int) -> dict:
    generator = torch.Generator().manual_seed(step)
    return {
        "world_model": {"pos": torch.randn(ENVS, 2, generator=generator)},
        "instruction": {"goal": torch.randn(ENVS, 1, generator=generator)},
    }


def test_the_wam_acts_on_its_episode_window_with_the_executed_previous_actions(tmp_path):
    checkpoint = tmp_path / "joint.pt"
    model = joint_checkpoint(checkpoint)
    assert is_wam_checkpoint(checkpoint) and not is_wam_checkpoint(tmp_path / "joint.pt.missing")
    env = SimpleNamespace(
        num_envs=ENVS,
        device="cpu",
        episode_length_buf=torch.zeros(ENVS, dtype=torch.long),
        action_manager=SimpleNamespace(action=torch.zeros(ENVS, 2), total_action_dim=2),
        observation_manager=SimpleNamespace(compute=lambda: observations(0)),
    )
    policy = make_policy(str(checkpoint), env, "WAM-Linear")
    assert isinstance(policy.policy, WamCheckpointPolicy)
    rows = [[] for _ in range(ENVS)]  # per env, its episode's (state, goal, previous executed action) rows
    for step in range(7):
        if step == 4:  # env 1 was reset by the last step: a new episode with a zero previous action
            env.episode_length_buf[1], env.action_manager.action[1] = 0, 0.0
            rows[1] = []
        obs = observations(step)
        for i in range(ENVS):
            rows[i].append((obs["world_model"]["pos"][i], obs["instruction"]["goal"][i], env.action_manager.action[i]))
        acted = policy(obs)
        for i in range(ENVS):
            window = rows[i][-HISTORY:]
            first = rows[i][0]  # a young episode's window starts with copies of its first step, previous action 0
            window = [(first[0], first[1], torch.zeros(2))] * (HISTORY - len(window)) + window
            states, goals, previous = (torch.stack(column)[None] for column in zip(*window, strict=True))
            with torch.no_grad():
                expected = model.act(states, goals, previous)[0]
            torch.testing.assert_close(acted[i], expected, rtol=0, atol=1e-6)
        env.action_manager.action = acted + 0.3  # the executed action differs from the policy's (noise, mixture)
        env.episode_length_buf += 1


def test_expert_mixture_executes_the_expert_with_probability_beta():
    learner = lambda obs: torch.zeros(4000, 1)  # noqa: E731
    expert = lambda obs: torch.ones(4000, 1)  # noqa: E731
    assert ExpertMixture(learner, expert, 0.0)({}).sum() == 0
    assert ExpertMixture(learner, expert, 1.0)({}).sum() == 4000
    torch.manual_seed(0)
    share = ExpertMixture(learner, expert, 0.25)({}).mean().item()
    assert abs(share - 0.25) < 0.03, share  # binomial std 0.007
