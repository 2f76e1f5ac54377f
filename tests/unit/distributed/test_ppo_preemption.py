"""Preemption of the PPO run (``wam train``'s runner, :class:`WamRunner`), plain rsl-rl PPO and joint-WAM PPO, on the
synthetic pusher (no simulator): SIGTERM in the middle of an iteration -> the iteration finishes, ``model_<it>.pt``
is written and ``learn`` returns (the command then exits 0); that checkpoint is bit for bit the one an uninterrupted
run of the same seed writes after the same iteration, and a runner resumed from it starts from exactly that state.

What a resumed run cannot match: a PPO checkpoint (Isaac Lab's and rsl-rl's alike) holds the learner, not the
simulator, so the resumed run's next rollout starts from freshly reset envs and fresh random streams; its next
iteration equals an uninterrupted run's only in everything the checkpoint holds (asserted here), not in the rollout."""

from __future__ import annotations

import os
import signal

import pytest
import torch
from wam_ppo_synthetic import SyntheticPushEnv, runner_cfg

from wam_isaac.distributed import ppo_runner
from wam_isaac.distributed.ppo_runner import WamRunner

STEPS = 8
"""Env steps per iteration (the synthetic runner config's ``num_steps_per_env``)."""


def plain_ppo_cfg() -> dict:
    """rsl-rl's PPO with MLP actor and critic on the pusher's ``policy`` / ``critic`` groups."""
    cfg = runner_cfg()
    wam_keys = ("world_model_weight", "pretrained_checkpoint", "shared_critic", "critic_warmup_iterations",
                "replay_capacity", "wam_model", "world_model", "imagination")  # fmt: skip
    cfg["algorithm"] = {k: v for k, v in cfg["algorithm"].items() if k not in wam_keys} | {"class_name": "PPO"}
    cfg["obs_groups"] = {"actor": ["policy"], "critic": ["critic"]}
    distribution = {"class_name": "GaussianDistribution", "init_std": 1.0}
    cfg["actor"] = {"class_name": "MLPModel", "hidden_dims": [16, 16], "activation": "elu",
                    "obs_normalization": True, "distribution_cfg": distribution}  # fmt: skip
    return cfg


CONFIGS = {"wam_ppo": runner_cfg, "plain_ppo": plain_ppo_cfg}


@pytest.fixture
def fresh_stop_request(monkeypatch):
    """A stop request of this test alone (the module keeps one per process); its handlers removed afterwards."""
    monkeypatch.setattr(ppo_runner, "_stop", None)
    yield
    if ppo_runner._stop is not None:
        ppo_runner._stop.uninstall()


def make_runner(kind: str, log_dir) -> WamRunner:
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=8, episode_length=10, seed=3)
    return WamRunner(env, CONFIGS[kind](), log_dir=str(log_dir), device="cpu")


def signal_at_step(runner: WamRunner, step: int) -> None:
    """SIGTERM to this process just before env step ``step`` (counted from 1)."""
    env_step, count = runner.env.step, [0]

    def step_then_maybe_signal(actions):
        count[0] += 1
        if count[0] == step:
            os.kill(os.getpid(), signal.SIGTERM)
        return env_step(actions)

    runner.env.step = step_then_maybe_signal


def flatten(value, prefix=""):
    """``{path: leaf}`` of nested dicts, lists and tuples."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in flatten(item, f"{prefix}/{key}").items()}
    if isinstance(value, (list, tuple)):
        return {k: v for i, item in enumerate(value) for k, v in flatten(item, f"{prefix}/{i}").items()}
    return {prefix: value}


def assert_identical(actual: dict, expected: dict) -> None:
    actual, expected = flatten(actual), flatten(expected)
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if torch.is_tensor(value):
            assert torch.equal(actual[key], value), key
        else:
            assert actual[key] == value, key


@pytest.mark.parametrize("kind", sorted(CONFIGS))
def test_sigterm_mid_iteration_checkpoints_the_uninterrupted_state_and_resumes_from_it(
    kind, tmp_path, fresh_stop_request, capsys
):
    torch.set_num_threads(1)
    straight = make_runner(kind, tmp_path / "straight")
    straight.learn(3)  # iterations 0, 1, 2; the last save is model_2.pt
    stopped = make_runner(kind, tmp_path / "stopped")
    signal_at_step(stopped, 2 * STEPS + 3)  # inside iteration 2
    stopped.learn(50)
    assert stopped.preempted_at == stopped.current_learning_iteration == 2
    assert "[wam] SIGTERM: checkpoint" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "stopped").glob("*.pt")) == ["model_0.pt", "model_2.pt"]
    checkpoint = torch.load(tmp_path / "stopped" / "model_2.pt", weights_only=False)
    assert checkpoint["iter"] == 2
    assert_identical(checkpoint, torch.load(tmp_path / "straight" / "model_2.pt", weights_only=False))
    # resume (as --checkpoint does, in a new process): the learner's whole state is the checkpoint's, then it trains
    ppo_runner._stop.uninstall()
    ppo_runner._stop = None
    resumed = make_runner(kind, tmp_path / "resumed")
    resumed.load(str(tmp_path / "stopped" / "model_2.pt"))
    assert_identical(resumed.alg.save(), {k: v for k, v in checkpoint.items() if k not in ("iter", "infos")})
    assert resumed.current_learning_iteration == 2
    resumed.learn(1)
    assert resumed.preempted_at is None and sorted(p.name for p in (tmp_path / "resumed").glob("*.pt")) == [
        "model_2.pt"
    ]  # rsl-rl numbers the first resumed iteration as the checkpoint's
    if kind == "wam_ppo":
        assert resumed.alg.iteration == 4  # updates counted across the stop (the critic warm-up reads it)
    after = resumed.alg.save()["actor_state_dict"]
    assert any(not torch.equal(v, checkpoint["actor_state_dict"][k]) for k, v in after.items() if v.is_floating_point())
