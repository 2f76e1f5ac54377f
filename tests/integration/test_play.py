"""``wam play`` on real envs: a joint WAM of ``wam train-model`` plays WAM-Push-Cube through the command (report
written, every env's first episodes scored); an rsl-rl checkpoint that implements the cart-pole's LQR expert balances
where a freshly initialized one fails, and the success flags agree with the episode lengths; bad input (missing file,
not a checkpoint, a world model without an action head, another task's checkpoint or observation groups) is refused
with a one-line error before anything is written."""

from __future__ import annotations

import argparse
import json
from types import SimpleNamespace

import pytest
import torch
from export_helpers import write_run
from omegaconf import OmegaConf

from wam_isaac.cli.errors import UsageError
from wam_isaac.cli.play import add_parser, load_checkpoint, play_in_env, run

pytestmark = pytest.mark.integration

CARTPOLE, PUSH = "WAM-Cartpole", "WAM-Push-Cube"
EPISODES = 16
BIAS = 50.0
"""Pre-activation offset that keeps every ELU of the LQR actor in its identity range (|observation| << 50)."""


@pytest.fixture(scope="module")
def cartpole(make_env):
    def two_seconds(env_cfg):
        env_cfg.episode_length_s = 2.0  # 120 control steps: the LQR holds the pole, a fresh policy drops it sooner

    with make_env(CARTPOLE, num_envs=EPISODES, configure=two_seconds) as env:
        yield env


@pytest.fixture(scope="module")
def cartpole_run(cartpole, tmp_path_factory):
    """``model_0.pt``: a freshly initialized PPO actor; ``model_1.pt``: the same network set to the LQR expert's
    linear law ``a = -K s / 100`` on the policy group ``s = (x, theta, x', theta')``."""
    from wam_isaac_tasks.cartpole.expert import ACTION_SCALE, lqr_gain

    run_dir = tmp_path_factory.mktemp("play") / "run"
    fresh, runner = write_run(cartpole, CARTPOLE, run_dir)
    actor = runner.alg.get_policy()
    linear = [module for module in actor.mlp if isinstance(module, torch.nn.Linear)]
    gain = torch.tensor(lqr_gain(), dtype=torch.float32) / ACTION_SCALE
    with torch.no_grad():
        for layer in linear:
            layer.weight.zero_(), layer.bias.zero_()
        linear[0].weight[:4, :4] = torch.eye(4)
        linear[0].bias[:] = BIAS  # h1 = s + 50 on units 0-3 (ELU is the identity there), 50 elsewhere
        linear[1].weight[:4, :4] = torch.eye(4)  # h2 = s + 50 on units 0-3, ELU(0) = 0 elsewhere
        linear[2].weight[0, :4] = -gain
        linear[2].bias[0] = float(gain.sum()) * BIAS  # a = -K (s + 50) / 100 + 50 K / 100
    runner.save(str(run_dir / "model_1.pt"))
    return fresh, run_dir / "model_1.pt"


def agent_cfg(task: str):
    from isaaclab_tasks.utils import resolve_task_config

    return resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=[])[1]


PUSH_STATE = {"joint_pos": 3, "joint_vel": 3, "cube_pos": 3, "cube_quat": 4, "cube_lin_vel": 3, "cube_ang_vel": 3}
"""WAM-Push-Cube's world_model group, term by term, as the task declares it (independent of the code under test)."""


def tiny_joint_wam_checkpoint(path, state: dict[str, int], action_dim: int, data: str) -> None:
    """A ``wam train-model``-format checkpoint of a small untrained joint WAM (history 4) over ``state`` terms, the
    goal instruction and ``action_dim`` actions, trained (so its config says) on the dataset ``data``."""
    from wam_isaac.models import JointWAM, TrunkCfg, WamSchema, model_cfg
    from wam_isaac.training.checkpoint import save_checkpoint
    from wam_isaac.training.config import TrainModelCfg

    schema = WamSchema(
        state_keys={f"obs/world_model/{term}": [size] for term, size in state.items()},
        instruction_keys={"obs/instruction/goal": [2]},
        action_shape=[action_dim],
    )
    cfg = TrainModelCfg(data=data, out=str(path.parent), device="cpu")
    cfg.model = model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=16, layers=1), head_hidden=16)
    cfg.train.history = 4
    torch.manual_seed(0)
    model = JointWAM(schema, cfg.model)
    config = OmegaConf.to_container(OmegaConf.structured(cfg))
    save_checkpoint(path, {"config": config, "schema": schema.to_dict(), "model": model.state_dict()})


def test_joint_wam_plays_push_cube_through_the_command(tmp_path, capsys):
    # first in the file: `run` builds its own env, and the module's cart-pole env is not built yet (one at a time)
    checkpoint = tmp_path / "push_joint.pt"
    tiny_joint_wam_checkpoint(checkpoint, PUSH_STATE, 3, data=str(tmp_path / "moved_dataset"))
    args = play_args(tmp_path, checkpoint, task=PUSH, episodes=8, num_envs=4)
    assert run(args, ["env.episode_length_s=0.39"]) == 0  # 10 control steps of 0.04 s
    report = json.loads((tmp_path / "o" / "play.json").read_text())
    assert (report["policy"], report["episodes"]) == ("wam train-model joint", 8)
    assert report["per_episode"]["length"] == [10] * 8, "4 envs x their first 2 episodes, each to the time limit"
    assert report["steps"] == 20, "the run stops once every env played its quota"
    assert report["success_rate"] == sum(report["per_episode"]["success"]) / 8
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"[wam] play {PUSH} (wam train-model joint): 8 episodes, success rate ")
    assert line.endswith(f"wrote {tmp_path / 'o' / 'play.json'}")


def test_lqr_checkpoint_balances_where_a_fresh_policy_fails(cartpole, cartpole_run):
    fresh, lqr = cartpole_run
    max_length = int(cartpole.max_episode_length)
    scores = {}
    for name, checkpoint in (("fresh", fresh), ("lqr", lqr)):
        loaded = load_checkpoint(str(checkpoint), CARTPOLE, "cpu")
        assert loaded.kind == "rsl_rl" and loaded.description.startswith("rsl-rl PPO")
        stats = play_in_env(cartpole, loaded, agent_cfg(CARTPOLE), EPISODES, seed=1)
        report = stats.to_dict(EPISODES)
        assert report["episodes"] == EPISODES == len(stats.lengths)
        # WAM-Cartpole succeeds by surviving to the time limit: the success flags agree with the episode lengths
        assert stats.success == [length == max_length for length in stats.lengths]
        assert report["success_rate"] == sum(stats.success) / EPISODES
        assert report["mean_return"] == pytest.approx(sum(stats.returns) / EPISODES)
        scores[name] = report["success_rate"]
    assert scores["lqr"] >= 0.9, scores
    assert scores["fresh"] <= 0.25, scores


def test_a_wam_of_other_observation_groups_is_refused_by_key(cartpole, tmp_path):
    from wam_isaac.models import JointWAM, TrunkCfg, WamSchema, model_cfg

    schema = WamSchema(
        state_keys={"obs/world_model/cube_pos": [3]}, instruction_keys={"obs/instruction/goal": [2]}, action_shape=[1]
    )
    model = JointWAM(schema, model_cfg("joint", trunk=TrunkCfg(kind="gru", hidden=8, layers=1), head_hidden=8))
    loaded = SimpleNamespace(kind="wam", model=model.eval(), history=2)
    with pytest.raises(UsageError, match="obs/world_model/cube_pos"):
        play_in_env(cartpole, loaded, None, episodes=2)


def play_args(tmp_path, checkpoint, task=CARTPOLE, episodes=4, num_envs=2) -> argparse.Namespace:
    """``wam play``'s arguments through its own parser (every flag at its default unless given)."""
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    argv = ["play", "--task", task, "--checkpoint", str(checkpoint), "--episodes", str(episodes)]
    argv += ["--num_envs", str(num_envs), "--device", "cpu", "--seed", "0", "--out", str(tmp_path / "o")]
    return parser.parse_args(argv)


def test_bad_checkpoints_are_refused_before_a_simulator_starts(cartpole_run, tmp_path):
    from wam_isaac.models import model_cfg
    from wam_isaac.training.checkpoint import save_checkpoint
    from wam_isaac.training.config import TrainModelCfg

    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(2)}, foreign)
    world_model = tmp_path / "gru.pt"
    config = OmegaConf.to_container(OmegaConf.structured(TrainModelCfg(data="x", out="y", model=model_cfg("gru"))))
    save_checkpoint(world_model, {"config": config, "schema": {"state_keys": {"obs/world_model/x": [1]}}, "model": {}})
    cases = {
        tmp_path / "missing.pt": "does not exist",
        text: "is not a torch checkpoint",
        foreign: "holds no policy",
        world_model: "has no action head",
    }
    for checkpoint, message in cases.items():
        with pytest.raises(UsageError, match=message):
            run(play_args(tmp_path, checkpoint), [])
    with pytest.raises(UsageError, match=f"trained on {CARTPOLE}, not on --task {PUSH}"):
        run(play_args(tmp_path, cartpole_run[1], task=PUSH), [])
    assert not (tmp_path / "o").exists(), "nothing is written for bad input"
