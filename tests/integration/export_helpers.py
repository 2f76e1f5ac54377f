"""Shared by the export integration tests: a run directory for a policy made in the test, and an exported policy
driven through the deploy runtime inside the simulator beside the torch policy."""

from __future__ import annotations

import json

import numpy as np
import torch

from wam_isaac.deploy import Policy
from wam_isaac.export.sim_terms import raw_policy_terms


def deterministic_actuation(env_cfg) -> None:
    """No latency, full strength, no observation noise: the env then applies exactly what the policy sent, and the
    policy group equals the raw terms (clipped and scaled), so the runtime and torch see the same inputs."""
    for name in env_cfg.actions.__dataclass_fields__:
        term = getattr(env_cfg.actions, name)
        if hasattr(term, "latency_steps"):
            term.latency_steps = (0, 0)
            term.strength_scale = (1.0, 1.0)
    env_cfg.observations.policy.enable_corruption = False


def write_run(env, task: str, run_dir) -> tuple:
    """An rsl-rl run directory (``model_0.pt``, ``run.json``, ``params/``) of a freshly initialized PPO policy for
    ``env``, as ``wam train`` would write it; returns the checkpoint path and the runner."""
    from isaaclab_rl.entrypoints.common import dump_train_configs, write_run_manifest
    from isaaclab_rl.rsl_rl import (
        RslRlVecEnvWrapper,
        check_rsl_rl_version,
        create_rsl_rl_runner,
        handle_deprecated_rsl_rl_cfg,
    )

    from isaaclab_tasks.utils import resolve_task_config

    _, agent_cfg = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=[])
    agent_cfg.device = str(env.device)
    agent_cfg = handle_deprecated_rsl_rl_cfg(agent_cfg, check_rsl_rl_version())  # as isaaclab train does
    runner = create_rsl_rl_runner(RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions), agent_cfg)
    run_dir.mkdir(parents=True)
    runner.save(str(run_dir / "model_0.pt"))
    dump_train_configs(str(run_dir), env.cfg, agent_cfg)
    write_run_manifest(str(run_dir), library="rsl_rl", task=task, metadata={"agent": "rsl_rl_cfg_entry_point"})
    assert json.loads((run_dir / "run.json").read_text())["task"] == task
    return run_dir / "model_0.pt", runner


def torch_policy(env, task: str, checkpoint):
    """The checkpoint's actor as the exporter loads it: observation dict -> deterministic actions."""
    from tensordict import TensorDict

    from isaaclab_tasks.utils import resolve_task_config

    from wam_isaac.export import load_policy, read_run

    _, agent_cfg = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=[])
    _, actor, _ = load_policy(env, read_run(checkpoint), agent_cfg)
    return lambda obs: actor(TensorDict(dict(obs), batch_size=[env.num_envs]))


def inner_terms(env) -> list:
    """The joint action terms the env applies (inside the latency/strength wrapper)."""
    return [getattr(term, "term", term) for term in env.action_manager._terms.values()]


def drive_side_by_side(env, export_dir, torch_policy, steps: int) -> tuple[float, int]:
    """Step the env under the torch policy; at every step, one deploy runtime per env (fed the raw terms read from the
    simulator, reset where an episode ended) must give the joint targets the env's action terms computed.

    Returns:
        the max |runtime - simulator| joint-target difference (clamped to the exported limits), and the number of
        episode ends seen.
    """
    policies = [Policy.load(export_dir) for _ in range(env.num_envs)]
    metadata = policies[0].metadata
    lower, upper = (np.array(metadata["action"]["limits"][key]) for key in ("lower", "upper"))
    obs = env.observation_manager.compute()
    worst, ends = 0.0, 0
    for _ in range(steps):
        terms = raw_policy_terms(env, metadata)
        targets = np.stack([policy.step({k: v[i] for k, v in terms.items()}) for i, policy in enumerate(policies)])
        with torch.inference_mode():
            actions = torch_policy(obs)
            obs, _, terminated, truncated, _ = env.step(actions)
        applied = torch.cat([term.processed_actions for term in inner_terms(env)], dim=-1).cpu().numpy()
        worst = max(worst, float(np.abs(targets - np.clip(applied, lower, upper)).max()))
        for i in torch.nonzero(terminated | truncated).flatten().tolist():
            policies[i].reset()
            ends += 1
    return worst, ends


def export_in(env, task: str, tmp_path):
    """Export a freshly initialized policy of ``task`` written as a run in ``tmp_path``, using ``env``; returns the
    export result and the torch policy."""
    checkpoint, runner = write_run(env, task, tmp_path / "run")
    from isaaclab_tasks.utils import resolve_task_config

    from wam_isaac.export import export_env, read_run

    _, agent_cfg = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=[])
    result = export_env(env, read_run(checkpoint), agent_cfg, tmp_path / "exported", samples=200)
    return result, runner.get_inference_policy(device=env.device)


def run_side_by_side(env, result, policy, steps: int = 12):
    """:func:`drive_side_by_side` from a reset, with every episode timing out 6 steps in."""
    with torch.inference_mode():  # the export's recording stepped the env in inference mode
        env.reset()
        env.episode_length_buf[:] = env.max_episode_length - 6  # time-outs within the run: the runtime resets too
        return drive_side_by_side(env, result.out, policy, steps=steps)
