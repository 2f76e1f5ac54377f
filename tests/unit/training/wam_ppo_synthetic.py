"""A tiny vectorized env with the observation groups of the WAM tasks, for WamPPO unit tests without a simulator.

Each env pushes a point (``pos``, [m], 2) toward a goal with its action (``pos += 0.1 * clip(a)``), and a yaw angle
turns with the first action entry (``cube_quat``, xyzw, w >= 0). An episode terminates when the point reaches the
goal (bonus 5) or leaves the 1.5 m square, and times out after ``episode_length`` steps. Like Isaac Lab's
``ManagerBasedRLEnv`` behind rsl-rl's wrapper, ``step`` resets ended envs before returning, reports ``time_outs``,
and (with ``cfg.compute_final_obs``) the observations before the reset in ``extras["final_obs"]`` (a plain dict of
groups, never cleared).
"""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from tensordict import TensorDict


def yaw_quaternion(yaw: torch.Tensor) -> torch.Tensor:
    """xyzw of a rotation by ``yaw`` [rad] about z, with w >= 0, (N, 4)."""
    q = torch.stack((torch.zeros_like(yaw), torch.zeros_like(yaw), torch.sin(yaw / 2), torch.cos(yaw / 2)), -1)
    return torch.where(q[:, 3:] < 0, -q, q)


class SyntheticPushEnv:
    """``num_envs`` point pushers (see the module docstring)."""

    def __init__(self, num_envs: int = 8, episode_length: int = 12, seed: int = 0, device: str = "cpu") -> None:
        self.num_envs, self.num_actions, self.device = num_envs, 2, torch.device(device)
        self.max_episode_length = episode_length
        self.cfg = SimpleNamespace(compute_final_obs=False)
        self.unwrapped = self
        self.generator = torch.Generator(device=device).manual_seed(seed)
        self.episode_length_buf = torch.zeros(num_envs, dtype=torch.long, device=device)
        self.pos = torch.zeros(num_envs, 2, device=device)
        self.yaw = torch.zeros(num_envs, device=device)
        self.goal = torch.zeros(num_envs, 2, device=device)
        self.prev = torch.zeros(num_envs, 2, device=device)
        self.episode = torch.zeros(num_envs, device=device)
        """Episodes started by each env (a test reads it to know which episode a state belongs to)."""
        self._reset(torch.ones(num_envs, dtype=torch.bool, device=device))

    def _uniform(self, count: int, dims: int, low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(count, dims, generator=self.generator, device=self.device)

    def _reset(self, mask: torch.Tensor) -> None:
        count = int(mask.sum())
        self.pos[mask] = self._uniform(count, 2, -0.5, 0.5)
        self.goal[mask] = self._uniform(count, 2, -0.6, 0.6)
        self.yaw[mask] = self._uniform(count, 1, -math.pi, math.pi)[:, 0]
        self.prev[mask] = 0.0
        self.episode_length_buf[mask] = 0
        self.episode[mask] += 1

    def groups(self) -> dict:
        """The observation groups as plain dicts (the form of ``extras["final_obs"]``)."""
        quat = yaw_quaternion(self.yaw)
        return {
            "policy": torch.cat((self.pos, self.goal - self.pos, self.prev), -1),
            "critic": torch.cat((self.pos, self.goal - self.pos, self.prev, quat), -1),
            "world_model": {"pos": self.pos.clone(), "cube_quat": quat},
            "instruction": {"goal": self.goal.clone()},
            "previous_action": self.prev.clone(),
        }

    def get_observations(self) -> TensorDict:
        return to_tensordict(self.groups(), self.num_envs)

    def step(self, actions: torch.Tensor):
        self.pos += 0.1 * actions.clamp(-1.0, 1.0)
        self.yaw = torch.remainder(self.yaw + 0.2 * actions[:, 0].clamp(-1.0, 1.0) + math.pi, 2 * math.pi) - math.pi
        self.prev = actions.clone()
        self.episode_length_buf += 1
        distance = (self.pos - self.goal).norm(dim=-1)
        success = distance < 0.1
        terminated = success | (self.pos.abs().amax(-1) > 1.5)
        time_outs = (self.episode_length_buf >= self.max_episode_length) & ~terminated
        rewards = -distance + 5.0 * success.float()
        dones = terminated | time_outs
        extras = {"time_outs": time_outs, "log": {}}
        if bool(dones.any()):
            if self.cfg.compute_final_obs:
                extras["final_obs"] = self.groups()
            self._reset(dones)
        return self.get_observations(), rewards, dones.long(), extras


def to_tensordict(groups: dict, num_envs: int) -> TensorDict:
    nested = {k: TensorDict(v, batch_size=[num_envs]) if isinstance(v, dict) else v for k, v in groups.items()}
    return TensorDict(nested, batch_size=[num_envs])


def runner_cfg(**algorithm) -> dict:
    """An rsl-rl OnPolicyRunner config (the dict Isaac Lab passes) for WamPPO on :class:`SyntheticPushEnv`: a GRU
    joint WAM 32 wide, 8 steps per env per iteration, world-model windows of 4 + 4 steps."""
    alg = {
        "class_name": "wam_isaac.training.wam_ppo:WamPPO",
        "num_learning_epochs": 2,
        "num_mini_batches": 2,
        "learning_rate": 1.0e-3,
        "schedule": "adaptive",
        "gamma": 0.99,
        "lam": 0.95,
        "entropy_coef": 0.005,
        "desired_kl": 0.01,
        "max_grad_norm": 1.0,
        "value_loss_coef": 1.0,
        "use_clipped_value_loss": True,
        "clip_param": 0.2,
        "world_model_weight": 1.0,
        "pretrained_checkpoint": None,
        "shared_critic": True,
        "critic_warmup_iterations": 0,
        "replay_capacity": 40,
        "wam_model": {"trunk": "gru", "hidden": 32, "layers": 2, "head_hidden": 32},
        "world_model": {"steps": 2, "batch_size": 16, "history": 4, "forecast": 4, "heldout_env_fraction": 0.25},
        "imagination": {"enabled": False},
    }
    alg.update(algorithm)
    return {
        "num_steps_per_env": 8,
        "save_interval": 50,
        "obs_groups": {"actor": ["world_model", "instruction", "previous_action"], "critic": ["critic"]},
        "actor": {"class_name": "wam_isaac.models.rl_adapters:WamActor", "hidden_dims": [], "activation": "elu"},
        "critic": {"class_name": "MLPModel", "hidden_dims": [16, 16], "activation": "elu", "obs_normalization": False},
        "algorithm": alg,
        "multi_gpu": None,
    }


def build_algorithm(env: SyntheticPushEnv, **algorithm):
    """A WamPPO on ``env`` built as rsl-rl's runner builds it."""
    from wam_isaac.training.wam_ppo import WamPPO

    return WamPPO.construct_algorithm(env.get_observations(), env, runner_cfg(**algorithm), "cpu")


def collect(alg, env: SyntheticPushEnv, obs: TensorDict | None = None) -> TensorDict:
    """One rollout of ``num_steps_per_env`` steps and the returns, as rsl-rl's runner does it; the last obs."""
    obs = env.get_observations() if obs is None else obs
    with torch.inference_mode():
        for _ in range(alg.storage.num_transitions_per_env):
            actions = alg.act(obs)
            obs, rewards, dones, extras = env.step(actions)
            alg.process_env_step(obs, rewards, dones, extras)
        alg.compute_returns(obs)
    return obs
