"""What the robot must reproduce, read from a live Isaac Lab env: observation and action layouts, control timing.

Everything here is read from the env's managers and assets after creation (resolved joint names, the action terms'
scale/offset tensors, the observation terms' resolved configs), not from config defaults.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .errors import ExportError
from .jsonable import callable_name, jsonable

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

UNITS = {
    "base_lin_vel": "m/s",
    "base_ang_vel": "rad/s",
    "projected_gravity": "1 (unit vector)",
    "joint_pos": "rad (revolute) or m (prismatic)",
    "joint_pos_rel": "rad (revolute) or m (prismatic), relative to the default pose",
    "joint_vel": "rad/s (revolute) or m/s (prismatic)",
    "joint_vel_rel": "rad/s (revolute) or m/s (prismatic), relative to the default velocity",
    "last_action": "1 (raw policy action)",
    "root_pos_w": "m",
    "root_lin_vel_w": "m/s",
    "root_ang_vel_w": "rad/s",
    "tip_pos": "m",
    "cube_pos_rel_tip": "m",
    "goal_pos_rel_cube": "m",
    "cube_yaw_features": "1",
}
"""Units of the observation functions this project's tasks use, by function name (others: ``null``)."""

ACTION_KINDS = {
    "JointPositionAction": ("joint_position", "rad (revolute) or m (prismatic)"),
    "JointEffortAction": ("joint_effort", "N m (revolute) or N (prismatic)"),
    "JointVelocityAction": ("joint_velocity", "rad/s (revolute) or m/s (prismatic)"),
}
"""Action term classes with an absolute joint target, and what that target is."""


def _row(value, dim: int) -> list[float]:
    """A per-joint list from a float or a (num_envs, dim) tensor (env 0)."""
    if isinstance(value, torch.Tensor):
        return value.reshape(-1, dim)[0].tolist()
    return [float(value)] * dim


def observation_layout(env: ManagerBasedRLEnv, groups: list[str], action_joint_names: list[str]) -> dict:
    """The flat policy input: the terms of ``groups`` in order, with slices, units, clip, scale, history, noise."""
    manager = env.observation_manager
    terms, start, orders = [], 0, set()
    for group in groups:
        if not manager.group_obs_concatenate[group]:
            raise ExportError(f"observation group '{group}' is not concatenated; the policy reads one flat vector")
        orders.add("time" if manager._group_obs_time_major[group] else "term")
        for name, dims, cfg in zip(
            manager.active_terms[group],
            manager.group_obs_term_dim[group],
            manager._group_obs_term_cfgs[group],
            strict=True,
        ):
            if cfg.modifiers:
                raise ExportError(f"observation term '{group}/{name}' has modifiers, which the runtime does not apply")
            if cfg.history_length > 0 and not cfg.flatten_history_dim:
                raise ExportError(f"observation term '{group}/{name}' keeps an unflattened history")
            size = int(torch.Size(dims).numel())
            history = int(cfg.history_length)
            frame = size // max(history, 1)
            terms.append(
                {
                    "name": name,
                    "group": group,
                    "slice": [start, start + size],
                    "shape": [frame],
                    "history_length": history,
                    "func": callable_name(cfg.func),
                    "unit": UNITS.get(_short_name(cfg.func)),
                    "clip": jsonable(cfg.clip),
                    "scale": jsonable(cfg.scale),
                    "noise": jsonable(cfg.noise),
                    "delay": _delay(cfg),
                    "joint_names": _term_joint_names(env, cfg, frame, action_joint_names),
                    "source": "last_action" if _short_name(cfg.func) == "last_action" else "robot",
                    "params": jsonable({k: v for k, v in cfg.params.items()}),
                }
            )
            start += size
    if len(orders) > 1:
        raise ExportError(f"observation groups {groups} mix term-major and time-major histories")
    names = [term["name"] for term in terms]
    if len(set(names)) != len(names):
        raise ExportError(f"observation groups {groups} repeat a term name; the runtime keys terms by name")
    return {"groups": list(groups), "size": start, "history_order": orders.pop(), "terms": terms}


def _short_name(func) -> str:
    return callable_name(func).rsplit(":", 1)[1].rsplit(".", 1)[-1]


def _delay(cfg) -> dict | None:
    low, high = getattr(cfg, "delay_min_lag", 0), getattr(cfg, "delay_max_lag", 0)
    return None if high == 0 else {"min_lag": low, "max_lag": high, "hold_prob": getattr(cfg, "delay_hold_prob", 1.0)}


def _term_joint_names(env, cfg, frame: int, action_joint_names: list[str]) -> list[str] | None:
    """The joints along a joint-indexed term (joint state of an articulation, or the last action)."""
    if _short_name(cfg.func) == "last_action":
        if cfg.params.get("action_name") is None and frame == len(action_joint_names):
            return list(action_joint_names)
        return None
    asset_cfg = cfg.params.get("asset_cfg")
    if asset_cfg is None or not _short_name(cfg.func).startswith("joint_"):
        return None
    asset = env.scene[asset_cfg.name]
    if not hasattr(asset, "joint_names"):
        return None
    ids = asset_cfg.joint_ids
    names = list(asset.joint_names) if isinstance(ids, slice) else [asset.joint_names[int(i)] for i in ids]
    return names if len(names) == frame else None


def action_layout(env: ManagerBasedRLEnv, clip_actions: float | None) -> dict:
    """The action pipeline: rsl-rl's clip, then per term ``target = clip(raw * scale + offset)``; joint limits."""
    manager = env.action_manager
    terms, joint_names, lower, upper, start = [], [], [], [], 0
    for name in manager.active_terms:
        term = manager._terms[name]
        inner = getattr(term, "term", term)  # ActuationRandomizedAction wraps the joint action term
        kind = ACTION_KINDS.get(type(inner).__name__)
        if kind is None:
            raise ExportError(
                f"action term '{name}' is a {type(inner).__name__}; export supports {', '.join(ACTION_KINDS)}"
            )
        dim = inner.action_dim
        names = list(inner._joint_names)
        clip = inner._clip[0].tolist() if inner.cfg.clip is not None else None
        terms.append(
            {
                "name": name,
                "kind": kind[0],
                "unit": kind[1],
                "asset": inner.cfg.asset_name,
                "slice": [start, start + dim],
                "joint_names": names,
                "scale": _row(inner._scale, dim),
                "offset": _row(inner._offset, dim),
                "clip": clip,
                "randomization": _actuation_randomization(term),
            }
        )
        low, high = _target_limits(env.scene[inner.cfg.asset_name], kind[0], names)
        lower += low
        upper += high
        joint_names += names
        start += dim
    if len(set(joint_names)) != len(joint_names):
        raise ExportError(f"action terms command a joint twice: {joint_names}")
    return {
        "dim": start,
        "pipeline": "runtime",
        "clip_actions": clip_actions,
        "joint_names": joint_names,
        "terms": terms,
        "limits": {"lower": lower, "upper": upper},
    }


def _actuation_randomization(term) -> dict | None:
    cfg = term.cfg
    if not hasattr(cfg, "latency_steps"):
        return None
    return {"latency_steps": list(cfg.latency_steps), "strength_scale": list(cfg.strength_scale)}


def _target_limits(asset, kind: str, names: list[str]) -> tuple[list[float], list[float]]:
    ids = [asset.joint_names.index(name) for name in names]
    data = asset.data
    if kind == "joint_position":
        limits = data.joint_pos_limits.torch[0, ids]
        return limits[:, 0].tolist(), limits[:, 1].tolist()
    bound = (data.joint_effort_limits if kind == "joint_effort" else data.joint_vel_limits).torch[0, ids]
    return (-bound).tolist(), bound.tolist()


def control_section(env: ManagerBasedRLEnv) -> dict:
    """Physics step, decimation and control period [s]."""
    return {
        "physics_dt": float(env.physics_dt),
        "decimation": int(env.cfg.decimation),
        "control_period": float(env.step_dt),
        "episode_length_s": float(env.cfg.episode_length_s),
    }
