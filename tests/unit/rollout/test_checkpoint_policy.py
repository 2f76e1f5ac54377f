"""CheckpointPolicy builds the actor over the agent config its run was trained with (not always plain PPO's) and
zeroes a recurrent actor's memory where an episode begins."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from types import SimpleNamespace

import torch

import wam_isaac.export as export
from wam_isaac.rollout.policies import CheckpointPolicy


class RecurrentActor:
    """A memory per env that counts steps since its last reset; acts with that count."""

    is_recurrent = True

    def __init__(self, num_envs: int) -> None:
        self.memory = torch.zeros(num_envs)

    def reset(self, dones: torch.Tensor) -> None:
        self.memory[dones.bool()] = 0.0

    def __call__(self, batch) -> torch.Tensor:
        self.memory += 1.0
        return self.memory[:, None].clone()


def test_actor_from_the_runs_entry_point_and_memory_reset_at_episode_starts(monkeypatch):
    entry_points, actor = [], RecurrentActor(4)
    run = SimpleNamespace(task="WAM-Push-Cube", agent_entry_point="rsl_rl_wam_cfg_entry_point")
    monkeypatch.setattr(export, "read_run", lambda checkpoint: run)
    monkeypatch.setattr(export, "load_policy", lambda env, run, agent_cfg: (None, actor, agent_cfg))
    tasks_utils = types.ModuleType("isaaclab_tasks.utils")
    tasks_utils.resolve_task_config = lambda task, entry, overrides: (entry_points.append(entry), "agent_cfg")
    monkeypatch.setitem(sys.modules, "isaaclab_tasks.utils", tasks_utils)
    env = SimpleNamespace(episode_length_buf=torch.tensor([0, 0, 0, 0]))
    policy = CheckpointPolicy(env, "WAM-Push-Cube", Path("model_3.pt"))
    assert entry_points == ["rsl_rl_wam_cfg_entry_point"]
    obs = {"policy": torch.zeros(4, 2)}
    assert policy(obs)[:, 0].tolist() == [1.0, 1.0, 1.0, 1.0]
    env.episode_length_buf = torch.tensor([1, 1, 1, 1])
    assert policy(obs)[:, 0].tolist() == [2.0, 2.0, 2.0, 2.0]
    env.episode_length_buf = torch.tensor([2, 0, 2, 0])  # envs 1 and 3 were reset by the last step
    assert policy(obs)[:, 0].tolist() == [3.0, 1.0, 3.0, 1.0]
