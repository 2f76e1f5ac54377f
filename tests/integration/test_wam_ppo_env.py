"""Joint-WAM PPO (WamPPO) inside rsl-rl's OnPolicyRunner on real Isaac Lab envs on the CPU, every task: the replay
holds every step, an episode's last step leads to the env's final observation (not the reset one), the world model
learns on a fixed batch, and TensorBoard gets the ``Loss/world_model_*`` and ``WorldModel/...`` scalars."""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.integration

AGENTS = {
    "WAM-Cartpole": "wam_isaac_tasks.cartpole.agents.rsl_rl_wam_cfg:CartpoleWamPPORunnerCfg",
    "WAM-Push-Cube": "wam_isaac_tasks.push_cube.agents.rsl_rl_wam_cfg:PushCubeWamPPORunnerCfg",
    "WAM-Quadruped-Flat": "wam_isaac_tasks.quadruped.agents.rsl_rl_wam_cfg:QuadrupedFlatWamPPORunnerCfg",
}


class RecordingWrapper:
    """rsl-rl's Isaac Lab wrapper, remembering each step's dones and, where an episode ended, its final state."""

    def __init__(self, env, schema_keys=None):
        self.env, self.steps = env, []

    def __getattr__(self, name):
        return getattr(self.env, name)

    def step(self, actions):
        obs, rewards, dones, extras = self.env.step(actions)
        final = extras.get("final_obs") if bool(dones.any()) else None
        terms = None if final is None else {k: v.clone() for k, v in final["world_model"].items()}
        self.steps.append((dones.clone(), extras["time_outs"].clone(), terms))
        return obs, rewards, dones, extras


def make_runner(env, task: str, log_dir, steps: int, **algorithm):
    from rsl_rl.runners import OnPolicyRunner

    from isaaclab.utils import class_to_dict, string_to_callable

    from isaaclab_rl.rsl_rl import RslRlVecEnvWrapper

    cfg = string_to_callable(AGENTS[task])()
    cfg.num_steps_per_env, cfg.device = steps, "cpu"
    for key, value in algorithm.items():
        setattr(cfg.algorithm, key, value)
    wrapped = RecordingWrapper(RslRlVecEnvWrapper(env))
    return OnPolicyRunner(wrapped, class_to_dict(cfg), log_dir=str(log_dir) if log_dir else None, device="cpu"), wrapped


def scalars(log_dir) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(log_dir), size_guidance={"scalars": 0})
    events.Reload()
    return set(events.Tags()["scalars"])


def test_cartpole_runner_two_iterations(make_env, tmp_path):
    from wam_isaac.models.rl_adapters import group_vector
    from wam_isaac.rollout.state import flatten_observations as dataset_keys
    from wam_isaac.training.objectives import world_model_loss

    with make_env("WAM-Cartpole", num_envs=8) as env:
        torch.manual_seed(0)
        world_model = {"steps": 16, "batch_size": 32, "history": 4, "forecast": 4, "heldout_env_fraction": 0.25}
        runner, wrapped = make_runner(env, "WAM-Cartpole", tmp_path, steps=16, world_model=world_model)
        alg = runner.alg
        # the schema read from the live env is keyed and shaped as a dataset of the task stores it
        stored = dataset_keys(env.observation_manager.compute())
        expected = [(k, list(v.shape[1:])) for k, v in stored.items() if k.startswith("obs/world_model/")]
        assert list(alg.wam.schema.state_keys.items()) == expected
        assert alg.wam.schema.action_shape == [1]
        runner.learn(1)
        fixed = alg.replay.sample(64, 7, alg.train_envs, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            before = float(world_model_loss(alg.wam, fixed, 4, alg.loss_cfg)[0])
        runner.learn(1)
        with torch.no_grad():
            after = float(world_model_loss(alg.wam, fixed, 4, alg.loss_cfg)[0])
        assert after < before, (before, after)
        assert alg.replay.size == 32 and alg.iteration == 2
        # every episode end of the run: the stored next state is the env's final observation
        replay, schema = alg.replay, alg.wam.schema
        rows = replay.rows(torch.arange(replay.size))
        ends = 0
        for index, (dones, time_outs, final) in enumerate(wrapped.steps):
            done = dones.bool()
            assert torch.equal(replay.dones[rows[index]], done)
            assert torch.equal(replay.terminated[rows[index]], (done & ~time_outs).float())
            if final is not None:
                final_state = group_vector({"world_model": final}, "world_model", schema.state_keys, (8,))
                assert torch.equal(replay.next_states[rows[index]][done], final_state[done])
                ends += int(done.sum())
        assert ends > 0 and replay.terminated.sum() > 0, "the run must end episodes by termination"
    runner.logger.writer.flush()
    tags = scalars(runner.logger.log_dir)
    assert {"Loss/world_model_dynamics_nll", "Loss/world_model_kl", "Loss/surrogate"} <= tags
    assert "WorldModel/ratio@8" in tags and "WorldModel/error@8/joint_pos" in tags  # logged the next iteration
    saved = torch.load(next(tmp_path.glob("model_*.pt")), weights_only=False)
    assert {"wam_state_dict", "wam_schema", "replay_state_dict"} <= set(saved)


@pytest.mark.parametrize("task", ["WAM-Push-Cube", "WAM-Quadruped-Flat"])
def test_one_iteration_on_every_other_task(make_env, task):
    with make_env(task, num_envs=4) as env:
        torch.manual_seed(0)
        world_model = {"steps": 1, "batch_size": 8, "history": 2, "forecast": 2, "heldout_env_fraction": 0.25}
        runner, _ = make_runner(env, task, None, steps=8, world_model=world_model, critic_warmup_iterations=0)
        alg = runner.alg
        before = [p.detach().clone() for p in alg.wam.dynamics.parameters()]
        runner.learn(1)
        assert alg.replay.size == 8 and alg.normalizers_fitted
        assert alg.wam.schema.instruction_dim > 0
        moved = any(not torch.equal(a, b) for a, b in zip(before, alg.wam.dynamics.parameters(), strict=True))
        assert moved, "the world-model steps must train the dynamics head"
        assert "WorldModel/ratio@8" not in alg.world_model_metrics or alg.world_model_metrics["WorldModel/ratio@8"] > 0
