"""``wam eval``'s closed loop in a real WAM-Push-Cube env (CPU, Newton): a tiny untrained joint WAM drives 3 envs
through two short episodes each; the windows it sees and the actions the env receives are checked step by step."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.evaluation.closed_loop import run_closed_loop
from wam_isaac.models import JointWAM, TrunkCfg, WamSchema, model_cfg

pytestmark = pytest.mark.integration

TASK = "WAM-Push-Cube"
NUM_ENVS = 3
HISTORY = 4
STATE_TERMS = ("joint_pos", "joint_vel", "cube_pos", "cube_quat", "cube_lin_vel", "cube_ang_vel")
"""The task's world_model group, in its declared order (independent of the code under test)."""


@pytest.fixture(scope="module")
def env(make_env):
    def short_episodes(env_cfg):
        env_cfg.episode_length_s = 0.19  # 5 control steps of 0.04 s

    with make_env(TASK, num_envs=NUM_ENVS, configure=short_episodes) as env:
        yield env


def state_vector(obs) -> torch.Tensor:
    return torch.cat([obs["world_model"][term].reshape(NUM_ENVS, -1) for term in STATE_TERMS], dim=-1)


def tiny_joint_wam(env) -> JointWAM:
    obs = env.observation_manager.compute()
    schema = WamSchema(
        state_keys={f"obs/world_model/{t}": [obs["world_model"][t].shape[-1]] for t in STATE_TERMS},
        instruction_keys={"obs/instruction/goal": [2]},
        action_shape=[env.action_manager.total_action_dim],
    )
    torch.manual_seed(0)
    cfg = model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=16, layers=1), head_hidden=16)
    return JointWAM(schema, cfg).to(env.device).eval()


def test_closed_loop_acts_on_the_window_it_built_and_refills_it_at_resets(env, monkeypatch):
    model = tiny_joint_wam(env)
    records, sent = [], []
    env_step = env.step

    def step(actions):
        sent.append(actions.clone())  # what the env receives
        return env_step(actions)

    monkeypatch.setattr(env, "step", step)

    def record(step, window, actions, obs, done):
        records.append(
            {
                "states": window.states.clone(),
                "instruction": window.instruction.clone(),
                "prev": window.prev_actions.clone(),
                "actions": actions.clone(),
                "next_state": state_vector(obs).clone(),
                "next_goal": obs["instruction"]["goal"].clone(),
                "done": done.clone(),
            }
        )

    steps_per_episode = int(env.max_episode_length)
    stats = run_closed_loop(env, model, model.schema, HISTORY, episodes=2 * NUM_ENVS, on_step=record)

    assert steps_per_episode == 5
    assert stats.steps == len(records) == 2 * steps_per_episode
    assert stats.lengths == [steps_per_episode] * (2 * NUM_ENVS) and stats.success == [False] * (2 * NUM_ENVS)
    first = records[0]
    # the first window: H copies of the first step, previous actions 0
    assert torch.equal(first["states"], first["states"][:, :1].expand(-1, HISTORY, -1))
    assert torch.equal(first["prev"], torch.zeros_like(first["prev"]))
    for step, rec in enumerate(records):
        # the env received exactly the model's mean action on the window
        expected = model.act(rec["states"], rec["instruction"], rec["prev"])
        torch.testing.assert_close(rec["actions"], expected)
        assert torch.equal(sent[step], rec["actions"])
        if step + 1 == len(records):
            break
        after = records[step + 1]
        if rec["done"].all():  # time out of every env: the window restarts from the first observation
            copies = rec["next_state"][:, None].expand(-1, HISTORY, -1)
            torch.testing.assert_close(after["states"], copies)
            torch.testing.assert_close(after["instruction"], rec["next_goal"][:, None].expand(-1, HISTORY, -1))
            assert torch.equal(after["prev"], torch.zeros_like(after["prev"]))
        else:  # the window slid by one step: the new state and the action just taken appended
            assert not rec["done"].any()
            torch.testing.assert_close(after["states"][:, :-1], rec["states"][:, 1:])
            torch.testing.assert_close(after["states"][:, -1], rec["next_state"])
            torch.testing.assert_close(after["prev"][:, -1], rec["actions"])
    assert [bool(r["done"].all()) for r in records] == [False] * 4 + [True] + [False] * 4 + [True]
    actions = torch.stack([r["actions"] for r in records])
    assert stats.actions_within_limits == int((actions.abs() <= 1).sum())
    assert stats.action_entries == actions.numel()
    within_episode = torch.cat((actions[1:5] - actions[0:4], actions[6:10] - actions[5:9]))
    assert stats.action_change_sum == pytest.approx(float(within_episode.abs().sum()), rel=1e-5)
