"""A short rollout of the env under the torch policy (deterministic actions): the recorded observations of the
parity check, with the actions torch took and where episodes ended."""

from __future__ import annotations

import numpy as np
import torch

from .validate import Recording


def record_rollout(wrapped, actor, group_sizes: list[tuple[str, int]], steps: int) -> Recording:
    """Step the rsl-rl-wrapped env ``steps`` times under ``actor``'s mean action; recurrent state reset at dones."""
    observations, actions, dones = [], [], []
    obs = wrapped.get_observations()
    actor.reset()
    with torch.inference_mode():
        for _ in range(steps):
            flat = torch.cat([obs[group] for group, _ in group_sizes], dim=-1)
            action = actor(obs)
            observations.append(flat.cpu().numpy().astype(np.float32))
            actions.append(action.cpu().numpy().astype(np.float32))
            obs, _, done, _ = wrapped.step(action)
            actor.reset(done)
            dones.append(done.bool().cpu().numpy())
    return Recording(np.stack(observations), np.stack(actions), np.stack(dones))
