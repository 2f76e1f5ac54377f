"""What the rollout driver records of an env at a step: the simulator state of every asset and the observations."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

STATE_DESCRIPTIONS = {
    "root_pose": "{asset}'s root link pose before the step: position relative to the env origin, quaternion xyzw",
    "root_vel": "{asset}'s center-of-mass linear and angular velocity before the step, world frame",
    "joint_pos": "{asset}'s joint positions before the step; joints: {joints}",
    "joint_vel": "{asset}'s joint velocities before the step; joints: {joints}",
}
"""Meaning of the ``states/<asset>/<field>`` keys :func:`record_state` records."""


def record_state(env: ManagerBasedRLEnv) -> dict[str, torch.Tensor]:
    """The simulator state of every asset, keyed ``states/<asset>/...``, each (num_envs, ...), copies."""
    origins = env.scene.env_origins
    state = {}
    for name, asset in {**env.scene.articulations, **env.scene.rigid_objects}.items():
        data = asset.data
        pose = torch.cat([data.root_link_pos_w.torch - origins, data.root_link_quat_w.torch], dim=-1)
        state[f"states/{name}/root_pose"] = pose
        state[f"states/{name}/root_vel"] = torch.cat([data.root_com_lin_vel_w.torch, data.root_com_ang_vel_w.torch], -1)
        if name in env.scene.articulations:
            state[f"states/{name}/joint_pos"] = data.joint_pos.torch.clone()
            state[f"states/{name}/joint_vel"] = data.joint_vel.torch.clone()
    return state


def flatten_observations(obs) -> dict[str, torch.Tensor]:
    """Copies of an env's observations keyed ``obs/<group>`` (concatenated groups) or ``obs/<group>/<term>``."""
    flat = {}
    for group, value in obs.items():
        if isinstance(value, torch.Tensor):
            flat[f"obs/{group}"] = value.clone()
        else:
            flat.update({f"obs/{group}/{term}": tensor.clone() for term, tensor in value.items()})
    return flat


def episode_success(env: ManagerBasedRLEnv, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """Success of the episodes ending now: the task's ``success`` termination when it has one, else survival to
    the time limit (balancing and locomotion tasks)."""
    manager = env.termination_manager
    if "success" in manager.active_terms:
        return manager.get_term("success").bool()
    return truncated & ~terminated
