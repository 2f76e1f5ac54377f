"""Record a rigid object's states from a live env under a policy, for contact-quality measurements.

:func:`record_object` steps the env and returns the object's root states as (N, T, ...) tensors, the layout
:func:`wam_isaac.evaluation.contact_quality.contact_quality` reads, with the pairs of consecutive states that belong to
one episode (Isaac Lab resets inside ``step``: the state after an episode's last step is the next episode's first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


@dataclass
class ObjectRecording:
    """Root states of one rigid object in every env over T env steps (the state after each step)."""

    pos: torch.Tensor
    """Object center in the env frame [m], (N, T, 3)."""
    quat: torch.Tensor
    """Orientation, xyzw [1], (N, T, 4)."""
    lin_vel: torch.Tensor
    """Linear velocity, world frame [m/s], (N, T, 3)."""
    ang_vel: torch.Tensor
    """Angular velocity, world frame [rad/s], (N, T, 3)."""
    continues: torch.Tensor
    """(N, T - 1) bool: state t + 1 follows state t in the same episode."""
    episodes: int
    """Episodes that ended during the recording (any termination or time out)."""
    successes: int
    """Of those, episodes ended by the task's ``success`` termination (0 if the task has none)."""


def record_object(
    env: ManagerBasedRLEnv, policy: Callable[[dict], torch.Tensor], steps: int, asset_name: str
) -> ObjectRecording:
    """Step ``env`` ``steps`` times under ``policy(obs) -> actions`` and record ``asset_name``'s root states."""
    obj = env.scene[asset_name]
    origins = env.scene.env_origins
    has_success = "success" in env.termination_manager.active_terms
    obs = env.observation_manager.compute()
    pos, quat, lin_vel, ang_vel, done = [], [], [], [], []
    episodes = successes = 0
    with torch.inference_mode():
        for _ in range(steps):
            obs, _, terminated, truncated, _ = env.step(policy(obs))
            ended = terminated | truncated
            episodes += int(ended.sum())
            if has_success:
                successes += int((env.termination_manager.get_term("success").bool() & ended).sum())
            pos.append(obj.data.root_link_pos_w.torch - origins)
            quat.append(obj.data.root_link_quat_w.torch.clone())
            lin_vel.append(obj.data.root_com_lin_vel_w.torch.clone())
            ang_vel.append(obj.data.root_com_ang_vel_w.torch.clone())
            done.append(ended.clone())
    return ObjectRecording(
        pos=torch.stack(pos, 1),
        quat=torch.stack(quat, 1),
        lin_vel=torch.stack(lin_vel, 1),
        ang_vel=torch.stack(ang_vel, 1),
        continues=~torch.stack(done[1:], 1),
        episodes=episodes,
        successes=successes,
    )
