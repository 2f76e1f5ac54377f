"""The deploy runtime's input read from a simulator: each policy observation term's raw value (the term function's
output before noise, clip and scale), as a robot's drivers would provide it. Drives an exported policy inside
Isaac Lab (parity tests, transfer checks)."""

from __future__ import annotations

import numpy as np
import torch


def raw_policy_terms(env, metadata: dict) -> dict[str, np.ndarray]:
    """``{term: values}`` for every robot-provided term of the exported observation, float32, shape
    ``(num_envs, term_size)``, computed by the env's own term functions (no noise, clip, scale or history)."""
    manager = env.observation_manager
    wanted = {term["name"] for term in metadata["observation"]["terms"] if term["source"] == "robot"}
    terms = {}
    with torch.inference_mode():
        for group in metadata["observation"]["groups"]:
            for name, cfg in zip(manager.active_terms[group], manager._group_obs_term_cfgs[group], strict=True):
                if name in wanted:
                    value = cfg.func(env, **cfg.params)
                    terms[name] = value.reshape(env.num_envs, -1).float().cpu().numpy()
    return terms
