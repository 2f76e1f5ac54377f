"""Temporally correlated exploration noise: an Ornstein-Uhlenbeck process on a policy's actions.

White exploration noise (:class:`wam_isaac.rollout.policies.ExplorationNoise`) draws a fresh offset at every control
step: each step's action jabs independently of the last, and a world model cannot predict it from the state. The
Ornstein-Uhlenbeck (OU) process here has the same stationary standard deviation ``std`` but a correlation time
``tau`` [s]: sampled every control period ``dt`` [s],

    n_{t+1} = a n_t + sqrt(1 - a^2) std e_t,   a = exp(-dt / tau),   e_t ~ N(0, 1),

so consecutive offsets are correlated (``corr(n_t, n_{t+k}) = a^k``) and the offset drifts smoothly for ``tau >> dt``.
Every episode starts from a fresh stationary draw ``n_0 ~ N(0, std^2)`` (the process is stationary from its first step
and independent across episodes).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

Policy = Callable[[dict[str, torch.Tensor]], torch.Tensor]
"""Observation dict -> actions (num_envs, action_dim)."""


class OUNoiseError(ValueError):
    """An OU noise that cannot be made (negative std, non-positive time constant or period)."""


def ou_coefficient(dt: float, tau: float) -> float:
    """The OU process's one-step autocorrelation ``a = exp(-dt / tau)`` [1] for a period ``dt`` and a time constant
    ``tau`` [s]."""
    if dt <= 0 or tau <= 0:
        raise OUNoiseError(f"the OU noise needs a control period > 0 and a time constant > 0 s, got dt {dt}, tau {tau}")
    return math.exp(-dt / tau)


class OUExplorationNoise:
    """Adds an OU process of stationary standard deviation ``std`` [action units] and time constant ``tau`` [s],
    sampled every ``dt`` [s], to a policy's actions, one independent process per env and action dimension.

    ``episode_start()`` returns a (num_envs,) bool tensor, True for the envs whose episode has just begun (their
    process restarts from a stationary draw), e.g. ``lambda: env.episode_length_buf == 0``; None: never restarts.
    """

    def __init__(
        self,
        policy: Policy,
        std: float,
        tau: float,
        dt: float,
        episode_start: Callable[[], torch.Tensor] | None = None,
    ):
        if std < 0:
            raise OUNoiseError(f"exploration noise must be >= 0, got {std}")
        self.policy, self.std, self.tau, self.dt = policy, std, tau, dt
        self.a = ou_coefficient(dt, tau)
        self.episode_start = episode_start
        self.state: torch.Tensor | None = None
        """The current offsets (num_envs, action_dim) [action units]; None before the first call."""

    def __call__(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        actions = self.policy(obs)
        if self.std == 0.0:
            return actions
        if self.state is None or self.state.shape != actions.shape:
            self.state = self.std * torch.randn_like(actions)
        else:
            self.state = self.a * self.state + math.sqrt(1.0 - self.a**2) * self.std * torch.randn_like(actions)
            if self.episode_start is not None:
                restart = self.episode_start().to(actions.device).bool().unsqueeze(-1)
                self.state = torch.where(restart, self.std * torch.randn_like(actions), self.state)
        return actions + self.state


def correlate(policy, tau: float, env) -> Policy:
    """``policy`` (a :class:`~wam_isaac.rollout.policies.ExplorationNoise`: white noise of std ``policy.std`` on
    ``policy.policy``) with its white noise replaced by an OU process of the same std and time constant ``tau`` [s],
    sampled every control period of ``env`` (``env.step_dt``) and restarted where an episode begins."""
    return OUExplorationNoise(policy.policy, policy.std, tau, env.step_dt, lambda: env.episode_length_buf == 0)
