"""Every dynamics label of a task, per env, per step, computed in place from the simulator's state.

:class:`Labeler` keeps, on the simulation's device, the short state history the horizon labels need (a ring buffer
of ``max(horizons) + 1`` steps) and launches the Warp kernels of :mod:`wam_isaac.labels.kernels` on zero-copy views
of Isaac Lab's asset data. Call :meth:`Labeler.reset` once after ``env.reset()`` and :meth:`Labeler.compute` after
every ``env.step()``.

Horizon labels look back: ``delta_<k>/...`` at step ``t`` describe ``s_t - s_{t-k}``, and ``delta_<k>/valid`` is 0
when fewer than ``k`` steps of the current episode exist, so a label never spans a reset (its value is then 0).
A world model's forecast target for step ``t`` is the label stored at ``t + k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from isaaclab.assets import BaseArticulation

from . import functional as F

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv


@dataclass
class LabelerCfg:
    """What to label in a task."""

    horizons: tuple[int, ...] = (1, 8)
    """Horizons [control steps] of the state-delta labels."""
    contact_threshold: float = 1.0
    """Contact force [N] above which a sensed body is in contact."""
    plane_height: float = 0.0
    """Height [m] above the env origin of the plane penetration is measured against (ground, or a table top)."""
    penetration_exclude: tuple[str, ...] = ()
    """Assets whose shapes are not checked for penetration (e.g. the table that defines the plane)."""
    end_effector: tuple[str, str] | None = None
    """``(articulation, body)`` of the end effector for the relative-pose labels, e.g. ``("robot", "pusher")``."""
    object_name: str | None = None
    """Rigid object manipulated by the end effector (relative poses end effector -> object -> goal)."""
    goal_command: str | None = None
    """Command term whose ``goal_pos_w`` [m] (num_envs, 3) is the object's goal."""


LABELER_KEY = "wam_labels_cfg_entry_point"
"""Gym registration key naming a task's :class:`LabelerCfg` (``"module:name"``); tasks without it get the defaults."""


def labeler_cfg_for(task: str, **overrides) -> LabelerCfg:
    """The labeler configuration the task registered (or the default), with ``overrides`` applied."""
    import dataclasses
    import importlib

    import gymnasium as gym

    entry = gym.spec(task).kwargs.get(LABELER_KEY)
    cfg = LabelerCfg()
    if entry is not None:
        module, name = entry.split(":")
        cfg = getattr(importlib.import_module(module), name)
    return dataclasses.replace(cfg, **overrides)


class Labeler:
    """Computes the labels of :class:`LabelerCfg` for every env of ``env``; see the module docstring."""

    def __init__(self, env: ManagerBasedRLEnv, cfg: LabelerCfg | None = None):
        self.env = env
        self.cfg = cfg or LabelerCfg()
        if not self.cfg.horizons or min(self.cfg.horizons) < 1:
            raise ValueError(f"horizons must be >= 1, got {self.cfg.horizons}")
        self.device = env.device
        n = env.num_envs
        self.assets = {**env.scene.articulations, **env.scene.rigid_objects}
        """Assets whose roots are tracked (articulations first, then rigid objects, in scene order)."""
        self.robot_names = list(env.scene.articulations)
        depth = max(self.cfg.horizons) + 1
        num_roots = len(self.assets)
        self._history = {
            "pos": torch.zeros(depth, n, num_roots, 3, device=self.device),
            "quat": torch.zeros(depth, n, num_roots, 4, device=self.device),
            "lin_vel": torch.zeros(depth, n, num_roots, 3, device=self.device),
            "ang_vel": torch.zeros(depth, n, num_roots, 3, device=self.device),
        }
        self._joint_history = {
            name: torch.zeros(depth, 2, n, self.env.scene[name].num_joints, device=self.device)
            for name in self.robot_names
        }
        self._wrap = {name: self._unlimited_revolute(self.env.scene[name]) for name in self.robot_names}
        self._step = 0
        self._energy = torch.zeros(n, device=self.device)
        self._shapes = {name: self._shape_table(asset) for name, asset in self.assets.items()}
        self._shapes = {
            k: v for k, v in self._shapes.items() if v is not None and k not in self.cfg.penetration_exclude
        }
        self._end_effector_body: int | None = None
        """Index of the end effector's body in its articulation, looked up once (a name match costs every step)."""

    # -- public ----------------------------------------------------------------------------------------------------

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Start the history from the current state: of every env after ``env.reset()`` (``env_ids`` None), or of
        ``env_ids`` after a reset outside ``env.step`` (e.g. the data driver resetting an env that blew up)."""
        if env_ids is None:
            for slot in range(max(self.cfg.horizons) + 1):
                self._push(slot)
            self._step = 0
            self._energy = self._energies()["energy"]
            return
        self._push(self._step % (max(self.cfg.horizons) + 1), env_ids)
        self._energy[env_ids] = self._energies()["energy"][env_ids]

    def compute(self) -> dict[str, torch.Tensor]:
        """Labels of the current step (call after ``env.step()``); each tensor's first dimension is num_envs."""
        self._step += 1
        depth = max(self.cfg.horizons) + 1
        now = self._step % depth
        self._push(now)
        steps_in_episode = self.env.episode_length_buf
        labels: dict[str, torch.Tensor] = {}
        for k in self.cfg.horizons:
            labels.update(self._deltas(k, (self._step - k) % depth, now, steps_in_episode >= k))
        labels.update(self._energy_labels(steps_in_episode >= 1))
        labels.update(self._contact_labels())
        labels.update(self._penetration_labels())
        labels.update(self._manipulation_labels())
        labels.update(self._flags())
        return labels

    # -- history ---------------------------------------------------------------------------------------------------

    def _push(self, slot: int, env_ids: torch.Tensor | slice = slice(None)) -> None:
        """Write the current state of ``env_ids`` into history ``slot``."""
        for i, asset in enumerate(self.assets.values()):
            data = asset.data
            self._history["pos"][slot, env_ids, i] = data.root_link_pos_w.torch[env_ids]
            self._history["quat"][slot, env_ids, i] = data.root_link_quat_w.torch[env_ids]
            self._history["lin_vel"][slot, env_ids, i] = data.root_com_lin_vel_w.torch[env_ids]
            self._history["ang_vel"][slot, env_ids, i] = data.root_com_ang_vel_w.torch[env_ids]
        for name in self.robot_names:
            data = self.env.scene[name].data
            self._joint_history[name][slot, 0, env_ids] = data.joint_pos.torch[env_ids]
            self._joint_history[name][slot, 1, env_ids] = data.joint_vel.torch[env_ids]

    def _deltas(self, k: int, prev: int, now: int, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        h = self._history
        dpos_w, dpos_b, drot = F.pose_delta(h["pos"][prev], h["quat"][prev], h["pos"][now], h["quat"][now])
        dlin, dang = F.body_velocity_delta(
            h["quat"][prev],
            h["lin_vel"][prev],
            h["ang_vel"][prev],
            h["quat"][now],
            h["lin_vel"][now],
            h["ang_vel"][now],
        )
        mask = valid.float()
        out = {f"delta_{k}/valid": mask}
        root = {
            "root_pos_w": dpos_w,
            "root_pos_b": dpos_b,
            "root_rotvec": drot,
            "root_lin_vel_b": dlin,
            "root_ang_vel_b": dang,
        }
        for key, value in root.items():
            out[f"delta_{k}/{key}"] = torch.where(valid[:, None, None], value, 0.0)
        for name in self.robot_names:
            joints = self._joint_history[name]
            dq, dqd = F.joint_delta(joints[prev, 0], joints[prev, 1], joints[now, 0], joints[now, 1], self._wrap[name])
            out[f"delta_{k}/{name}/joint_pos"] = torch.where(valid[:, None], dq, 0.0)
            out[f"delta_{k}/{name}/joint_vel"] = torch.where(valid[:, None], dqd, 0.0)
        return out

    # -- energy ----------------------------------------------------------------------------------------------------

    def _energies(self) -> dict[str, torch.Tensor]:
        parts = [
            (
                a.data.body_com_pos_w.torch,
                a.data.body_com_quat_w.torch,
                a.data.body_com_lin_vel_w.torch,
                a.data.body_com_ang_vel_w.torch,
                a.data.body_mass.torch,
                a.data.body_inertia.torch,
            )
            for a in self.assets.values()
        ]
        stacked = [torch.cat(items, dim=1) for items in zip(*parts, strict=True)]
        gravity = tuple(float(g) for g in self.env.sim.cfg.gravity)
        return F.mechanical_energy(*stacked, gravity, self._energy)

    def _energy_labels(self, valid: torch.Tensor) -> dict[str, torch.Tensor]:
        energies = self._energies()
        self._energy = energies["energy"]
        labels = {
            "energy/kinetic": energies["kinetic"],
            "energy/potential": energies["potential"],
            "energy/total": energies["energy"],
            "energy/delta": torch.where(valid, energies["energy_delta"], 0.0),
        }
        work = torch.zeros(self.env.num_envs, device=self.device)
        depth = max(self.cfg.horizons) + 1
        prev, now = (self._step - 1) % depth, self._step % depth
        for name in self.robot_names:
            robot = self.env.scene[name]
            joints = self._joint_history[name]
            work += F.actuator_work(robot.data.applied_torque.torch, joints[prev, 1], joints[now, 1], self.env.step_dt)
        labels["energy/actuator_work"] = torch.where(valid, work, 0.0)
        return labels

    # -- contacts and penetration ----------------------------------------------------------------------------------

    def _contact_labels(self) -> dict[str, torch.Tensor]:
        from isaaclab.sensors import BaseContactSensor

        labels = {}
        for name, sensor in self.env.scene.sensors.items():
            if isinstance(sensor, BaseContactSensor):
                flag, force = F.contact(sensor.data.net_forces_w.torch, self.cfg.contact_threshold)
                labels[f"contact/{name}/flag"] = flag
                labels[f"contact/{name}/force"] = force
        return labels

    def _shape_table(self, asset) -> dict[str, torch.Tensor] | None:
        """Collision shapes of ``asset`` (Newton backend): body index (Isaac Lab order), type, local pose, scale."""
        view = getattr(asset, "_root_view", None)
        get_model = getattr(self.env.sim.physics_manager, "get_model", None)
        if view is None or get_model is None or not hasattr(view, "body_shapes"):
            return None
        model = get_model()
        types = view.get_attribute("shape_type", model).numpy()[0, 0]
        scales = view.get_attribute("shape_scale", model).numpy()[0, 0]
        transforms = view.get_attribute("shape_transform", model).numpy()[0, 0]
        names = asset.body_names
        backend = (
            asset.map_body_ids_to_backend(list(range(len(names))))
            if hasattr(asset, "map_body_ids_to_backend")
            else list(range(len(names)))
        )
        rows = [(body, shape) for body, b in enumerate(backend) for shape in view.body_shapes[int(b)]]
        if not rows:
            return None
        bodies, shapes = zip(*rows, strict=True)
        as_tensor = lambda x, dtype=torch.float32: torch.as_tensor(x, dtype=dtype, device=self.device)  # noqa: E731
        return {
            "body": as_tensor(bodies, torch.int32),
            "type": as_tensor(types[list(shapes)], torch.int32),
            "local": as_tensor(transforms[list(shapes)]),
            "scale": as_tensor(scales[list(shapes)]),
        }

    def _penetration_labels(self) -> dict[str, torch.Tensor]:
        plane = self.env.scene.env_origins[:, 2] + self.cfg.plane_height
        labels = {}
        for name, table in self._shapes.items():
            pose = self.assets[name].data.body_link_pose_w.torch
            labels[f"penetration/{name}"] = F.plane_penetration(
                pose, table["body"], table["type"], table["local"], table["scale"], plane
            )
        return labels

    # -- manipulation and flags ------------------------------------------------------------------------------------

    def _manipulation_labels(self) -> dict[str, torch.Tensor]:
        cfg = self.cfg
        if cfg.end_effector is None or cfg.object_name is None:
            return {}
        robot_name, body_name = cfg.end_effector
        robot = self.env.scene[robot_name]
        if self._end_effector_body is None:
            self._end_effector_body = robot.find_bodies([body_name])[0][0]
        body = self._end_effector_body
        ee_pos, ee_quat = robot.data.body_link_pos_w.torch[:, body], robot.data.body_link_quat_w.torch[:, body]
        obj = self.env.scene[cfg.object_name].data
        obj_pos, obj_quat = obj.root_link_pos_w.torch, obj.root_link_quat_w.torch
        obj_in_ee, obj_rot_in_ee = F.relative_pose(ee_pos, ee_quat, obj_pos, obj_quat)
        labels = {"manipulation/object_pos_in_ee": obj_in_ee, "manipulation/object_rotvec_in_ee": obj_rot_in_ee}
        if cfg.goal_command is not None:
            goal = self.env.command_manager.get_term(cfg.goal_command).goal_pos_w
            identity = torch.zeros_like(obj_quat)
            identity[:, 3] = 1.0
            goal_in_obj, _ = F.relative_pose(obj_pos, obj_quat, goal, identity)
            labels["manipulation/goal_pos_in_object"] = goal_in_obj
            labels["manipulation/object_to_goal_distance_xy"] = torch.linalg.norm((goal - obj_pos)[:, :2], dim=-1)
        return labels

    def _flags(self) -> dict[str, torch.Tensor]:
        manager = self.env.termination_manager
        flags = {"flags/terminated": manager.terminated.float(), "flags/time_out": manager.time_outs.float()}
        if "success" in manager.active_terms:
            flags["flags/success"] = manager.get_term("success").float()
        return flags

    @staticmethod
    def _unlimited_revolute(robot: BaseArticulation) -> torch.Tensor:
        """1 for joints whose position may wrap (limits spanning more than 2 pi), else 0, shape (num_joints,)."""
        limits = robot.data.joint_pos_limits.torch[0]
        return ((limits[:, 1] - limits[:, 0]) > 2 * torch.pi).to(torch.int32)
