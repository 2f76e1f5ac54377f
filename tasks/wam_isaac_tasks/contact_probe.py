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
    tracked_pos: torch.Tensor | None = None
    """Position of the tracked body (``track_body``) in the env frame [m], (N, T, 3); None when none was tracked."""

    def steps_since_reset(self) -> torch.Tensor:
        """(N, T) int: control steps since the state's episode began (0: the first state after a reset), counted
        from the recording's first state for episodes that began before it."""
        since = torch.zeros(self.continues.shape[0], self.continues.shape[1] + 1, dtype=torch.long)
        for t in range(1, since.shape[1]):
            since[:, t] = torch.where(self.continues[:, t - 1].cpu(), since[:, t - 1] + 1, 0)
        return since.to(self.continues.device)


def record_object(
    env: ManagerBasedRLEnv,
    policy: Callable[[dict], torch.Tensor],
    steps: int,
    asset_name: str,
    track_body: tuple[str, str] | None = None,
) -> ObjectRecording:
    """Step ``env`` ``steps`` times under ``policy(obs) -> actions`` and record ``asset_name``'s root states, and
    the position of ``track_body = (articulation, body)`` if given (e.g. the pusher's tip)."""
    obj = env.scene[asset_name]
    tracked = []
    if track_body is not None:
        articulation = env.scene[track_body[0]]
        body = articulation.find_bodies([track_body[1]])[0][0]
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
            if track_body is not None:
                tracked.append(articulation.data.body_link_pos_w.torch[:, body] - origins)
    return ObjectRecording(
        pos=torch.stack(pos, 1),
        quat=torch.stack(quat, 1),
        lin_vel=torch.stack(lin_vel, 1),
        ang_vel=torch.stack(ang_vel, 1),
        continues=~torch.stack(done[1:], 1),
        episodes=episodes,
        successes=successes,
        tracked_pos=torch.stack(tracked, 1) if tracked else None,
    )
