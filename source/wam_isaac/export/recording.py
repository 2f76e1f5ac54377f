"""A short rollout of the env under the torch policy (deterministic actions): the recorded observations of the
parity check, with the actions torch took and where episodes ended."""

from __future__ import annotations

import numpy as np
import torch

from .validate import Recording


def record_rollout(wrapped, actor, group_sizes: list[tuple[str, int]], steps: int, flatten=None) -> Recording:
    """Step the rsl-rl-wrapped env ``steps`` times under ``actor``'s mean action; recurrent state reset at dones.
    ``flatten(obs)`` turns nested groups into flat ones first (a joint WAM's ``world_model`` group)."""
    observations, actions, dones = [], [], []
    obs = wrapped.get_observations()
    actor.reset()
    with torch.inference_mode():
        for _ in range(steps):
            flat_obs = obs if flatten is None else flatten(obs)
            flat = torch.cat([flat_obs[group] for group, _ in group_sizes], dim=-1)
            action = actor(obs)
            observations.append(flat.cpu().numpy().astype(np.float32))
            actions.append(action.cpu().numpy().astype(np.float32))
            obs, _, done, _ = wrapped.step(action)
            actor.reset(done)
            dones.append(done.bool().cpu().numpy())
    return Recording(np.stack(observations), np.stack(actions), np.stack(dones))
