"""The robot as the simulator drove it: default pose, PD gains as the actuators apply them, limits; and the domain
randomization the policy was trained under.

PD gains come from the actuator objects after the env was created (the values the simulation uses), never from the
articulation config, whose gains may be ``None`` (mjlab #347: gains exported as 1.0 / -0.0). When a
``randomize_actuator_gains`` event scaled them per env, the nominal gains are the ones that event read from the
actuators before randomizing (its ``default_actuator_stiffness`` / ``default_actuator_damping``); the range it drew
from is in ``domain_randomization``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .jsonable import callable_name, jsonable

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


def robot_section(env: ManagerBasedRLEnv, asset_name: str) -> dict:
    """Joint names (simulation order), default pose [rad or m], PD gains, effort/velocity limits, actuator groups."""
    asset = env.scene[asset_name]
    names = list(asset.joint_names)
    stiffness, damping, source = pd_gains(env, asset_name)
    data = asset.data
    return {
        "asset": asset_name,
        "joint_names": names,
        "default_joint_pos": dict(zip(names, data.default_joint_pos.torch[0].tolist(), strict=True)),
        "pd_gains": {
            name: {"stiffness": float(kp), "damping": float(kd)}
            for name, kp, kd in zip(names, stiffness.tolist(), damping.tolist(), strict=True)
        },
        "pd_gains_source": source,
        "effort_limits": dict(zip(names, data.joint_effort_limits.torch[0].tolist(), strict=True)),
        "velocity_limits": dict(zip(names, data.joint_vel_limits.torch[0].tolist(), strict=True)),
        "joint_pos_limits": dict(zip(names, data.joint_pos_limits.torch[0].tolist(), strict=True)),
        "actuators": [
            {"name": name, "type": type(actuator).__name__, "joint_names": list(actuator.joint_names)}
            for name, actuator in asset.actuators.items()
        ],
    }


def pd_gains(env: ManagerBasedRLEnv, asset_name: str) -> tuple[torch.Tensor, torch.Tensor, str]:
    """Nominal stiffness and damping per joint (simulation order), and where they were read.

    Returns:
        stiffness [N m/rad or N/m], damping [N m s/rad or N s/m], both shape (num_joints,), and the source:
        ``"actuators"`` (live actuator values, no gain randomization) or ``"actuators_before_randomization"``.
    """
    asset = env.scene[asset_name]
    stiffness = torch.zeros(asset.num_joints)
    damping = torch.zeros(asset.num_joints)
    defaults = _gain_randomization_defaults(env, asset_name)
    for name, actuator in asset.actuators.items():
        ids = _joint_ids(asset, actuator)
        if defaults is not None and name in defaults[0]:
            kp, kd = defaults[0][name], defaults[1][name]
        else:
            kp, kd = _live_gains(asset, name, actuator)
        stiffness[ids] = kp[0].float().cpu()
        damping[ids] = kd[0].float().cpu()
    source = "actuators" if defaults is None else "actuators_before_randomization"
    return stiffness, damping, source


def _joint_ids(asset, actuator) -> list[int]:
    return [asset.joint_names.index(name) for name in actuator.joint_names]


def _live_gains(asset, name: str, actuator) -> tuple[torch.Tensor, torch.Tensor]:
    """The gains a group applies now: Newton-executed groups read from the controller, others from the actuator."""
    if name in getattr(asset.actuators, "_native_group_names", set()):
        from isaaclab.actuators.newton import read_group_parameter

        return (
            read_group_parameter(asset.actuators, name, "controller", "kp"),
            read_group_parameter(asset.actuators, name, "controller", "kd"),
        )
    return actuator.stiffness, actuator.damping


def _gain_randomization_defaults(env, asset_name: str):
    """``(stiffness, damping)`` dicts by actuator group from a ``randomize_actuator_gains`` event on the asset."""
    for cfgs in env.event_manager._mode_term_cfgs.values():
        for cfg in cfgs:
            term = cfg.func
            if hasattr(term, "default_actuator_stiffness") and term.asset_cfg.name == asset_name:
                return term.default_actuator_stiffness, term.default_actuator_damping
    return None


def domain_randomization(env: ManagerBasedRLEnv) -> dict:
    """The event terms (mode, function, parameters, interval) the policy was trained under."""
    events = []
    manager = env.event_manager
    for mode, names in manager.active_terms.items():
        for name, cfg in zip(names, manager._mode_term_cfgs[mode], strict=True):
            entry = {"name": name, "mode": mode, "func": callable_name(cfg.func), "params": jsonable(cfg.params)}
            if mode == "interval":
                entry["interval_range_s"] = jsonable(cfg.interval_range_s)
            events.append(entry)
    return {"events": events}
