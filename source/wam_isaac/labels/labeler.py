"""Every dynamics label of a task, per env, per step, computed in place from the simulator's state.

:class:`Labeler` keeps, on the simulation's device, the short state history the horizon labels need (a ring buffer
of ``max(horizons) + 1`` steps) and launches the Warp kernels of :mod:`wam_isaac.labels.kernels` on zero-copy views
of Isaac Lab's asset data. Call :meth:`Labeler.reset` once after ``env.reset()`` and :meth:`Labeler.compute` after
every ``env.step()`` (or from inside it, before Isaac Lab resets the finished envs, and then again after it with
``new_step=False``).

Per step, each label group is one launch of a history kernel (:mod:`wam_isaac.labels.kernels`) replayed through
:class:`~wam_isaac.labels.functional.RecordedLaunch` on buffers allocated once: Isaac Lab's state is read in place
(``ProxyArray.warp``), the history and the labels are the labeler's own arrays, and labels spanning a reset are zeroed
inside the kernels.

Horizon labels look back: ``delta_<k>/...`` at step ``t`` describe ``s_t - s_{t-k}``, and ``delta_<k>/valid`` is 0
when fewer than ``k`` steps of the current episode exist, so a label never spans a reset (its value is then 0).
A world model's forecast target for step ``t`` is the label stored at ``t + k``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
import warp as wp

from isaaclab.assets import BaseArticulation

from . import functional as F
from . import kernels

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


_ROOT_DELTAS = ("root_pos_w", "root_pos_b", "root_rotvec", "root_lin_vel_b", "root_ang_vel_b")
"""Labels of the roots' changes over a horizon, in the order of :func:`kernels.root_history_delta_kernel`'s outputs."""
_MANIPULATION = ("object_pos_in_ee", "object_rotvec_in_ee", "goal_pos_in_object")


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
        self._depth = max(self.cfg.horizons) + 1
        """Slots of the history ring buffers: the current step and the ``max(horizons)`` before it."""
        zeros = lambda *shape: torch.zeros(*shape, device=self.device)  # noqa: E731
        self._root_pose = zeros(self._depth, n, len(self.assets), 7)
        """History of the assets' root link poses ``[p, q]`` (world frame) [m], (depth, num_envs, num_roots, 7)."""
        self._root_velocity = zeros(self._depth, n, len(self.assets), 6)
        """History of their center-of-mass velocities ``[v, w]`` (world frame), (depth, num_envs, num_roots, 6)."""
        self._joints = {name: zeros(self._depth, 2, n, env.scene[name].num_joints) for name in self.robot_names}
        """History of each robot's joint positions and velocities, (depth, 2, num_envs, num_joints)."""
        self._wrap = {name: self._unlimited_revolute(env.scene[name]) for name in self.robot_names}
        self._step = 0
        self._energy_prev = zeros(n)
        """Mechanical energy [J] at the previous step, (num_envs,); the energy kernel overwrites it with the current
        step's."""
        self._energy_start = zeros(n)
        """:attr:`_energy_prev` as the current step found it, so that the step can be labeled twice."""
        self._shapes = {name: self._shape_table(asset) for name, asset in self.assets.items()}
        self._shapes = {
            k: v for k, v in self._shapes.items() if v is not None and k not in self.cfg.penetration_exclude
        }
        self._plane = zeros(n)
        """Height [m] of the penetration plane per env (env origins may move, e.g. with a terrain curriculum)."""
        self._goal = zeros(n, 3)
        self._reset_energy = (zeros(n), zeros(n))
        """Kinetic and potential energy [J] of a partial reset, apart from the labels of the step."""
        self._end_effector_body = None
        if self.cfg.end_effector is not None and self.cfg.object_name is not None:
            robot_name, body_name = self.cfg.end_effector
            self._end_effector_body = env.scene[robot_name].find_bodies([body_name])[0][0]
        self._warp: dict[str, wp.array] = {}
        """Warp views of the history, label and scratch buffers, made once."""
        self._labels = self._allocate_labels()
        """The label buffers, keyed as :meth:`compute` returns them (flags excepted)."""
        self._launches: dict[str, F.RecordedLaunch] = {}
        self._episode_view: tuple[int, wp.array] | None = None

    # -- public ----------------------------------------------------------------------------------------------------

    def reset(self, env_ids: torch.Tensor | None = None) -> None:
        """Start the history from the current state: of every env after ``env.reset()`` (``env_ids`` None), or of
        ``env_ids`` after a reset outside ``env.step`` (e.g. the data driver resetting an env that blew up)."""
        if env_ids is None:
            for slot in range(self._depth):
                self._push(slot)
            self._step = 0
            self._body_energies("energy/kinetic", "energy/potential")
            torch.add(self._labels["energy/kinetic"], self._labels["energy/potential"], out=self._energy_prev)
            return
        self._push(self._step % self._depth, env_ids)
        self._body_energies("kinetic_reset", "potential_reset")
        kinetic, potential = self._reset_energy
        self._energy_prev[env_ids] = (kinetic + potential)[env_ids]

    def compute(self, new_step: bool = True) -> dict[str, torch.Tensor]:
        """Labels of the current step (call after ``env.step()``); each tensor's first dimension is num_envs.

        The tensors are the labeler's own buffers, overwritten by the next :meth:`compute` or :meth:`reset`: copy
        what must outlive the step (the rollout driver's collector copies every label into its ring at once).

        Args:
            new_step: False to label the same env step again from the current state, in the same history slot and
                against the same previous step: the rollout driver labels a step inside ``env.step`` before Isaac
                Lab resets the finished envs (their last step, see :mod:`wam_isaac.rollout.terminal`) and again
                after it (the other envs, which the step's interval events may have changed after the reset); the
                second call also leaves the new episodes' first states in the history.
        """
        if new_step:
            self._step += 1
            self._energy_start.copy_(self._energy_prev)
        else:
            self._energy_prev.copy_(self._energy_start)
        now = self._step % self._depth
        self._push(now)
        steps_in_episode = self._steps_in_episode()
        self._deltas(now, steps_in_episode)
        self._energies(now, steps_in_episode)
        self._contacts()
        self._penetrations()
        self._manipulation()
        return {**self._labels, **self._flags()}

    def descriptions(self) -> dict[str, str]:
        """What every label :meth:`compute` returns means, keyed like it: the quantity, its frame and, for each
        trailing axis, what its entries are (roots, joints, sensed bodies, shapes) in storage order. The rollout
        driver records these in the dataset's manifest, so a dataset says what ``labels/delta_1/root_pos_w[..., 2, :]``
        is without the code that wrote it."""
        roots = ", ".join(self.assets)
        described: dict[str, str] = {}
        for k in self.cfg.horizons:
            span = f"over the last {k} step{'s' if k > 1 else ''} (s_t - s_t-{k})"
            described[f"delta_{k}/valid"] = (
                f"1 if the episode has lasted at least {k} step{'s' if k > 1 else ''}, else 0 and every delta_{k} "
                "label is 0 (it would span a reset)"
            )
            described[f"delta_{k}/root_pos_w"] = f"root position change {span}, world frame; roots: {roots}"
            described[f"delta_{k}/root_pos_b"] = (
                f"root position change {span} in the earlier root frame, R_prev^T (p_now - p_prev); roots: {roots}"
            )
            described[f"delta_{k}/root_rotvec"] = (
                f"rotation vector of q_prev^-1 q_now {span}, earlier root frame, angle in [0, pi]; roots: {roots}"
            )
            described[f"delta_{k}/root_lin_vel_b"] = (
                f"change of the center-of-mass linear velocity, each in its body frame, {span}; roots: {roots}"
            )
            described[f"delta_{k}/root_ang_vel_b"] = (
                f"change of the angular velocity, each in its body frame, {span}; roots: {roots}"
            )
            for name in self.robot_names:
                joints = ", ".join(self.env.scene[name].joint_names)
                described[f"delta_{k}/{name}/joint_pos"] = (
                    f"joint position change {span}, unlimited revolute joints wrapped to (-pi, pi]; joints: {joints}"
                )
                described[f"delta_{k}/{name}/joint_vel"] = f"joint velocity change {span}; joints: {joints}"
        described["energy/kinetic"] = f"kinetic energy of every body (translation + rotation) of {roots}"
        described["energy/potential"] = f"gravitational potential energy of every body of {roots}, zero at z = 0"
        described["energy/total"] = "energy/kinetic + energy/potential"
        described["energy/delta"] = "change of energy/total over the last step, 0 on an episode's first step"
        described["energy/actuator_work"] = (
            "work of the joint actuators over the last step, sum_j tau_j (qd_prev_j + qd_now_j) / 2 dt"
        )
        for name, sensor in self._contact_sensors().items():
            # Newton's sensor names its bodies (or shapes) ``sensor_names``; PhysX's, ``body_names``
            bodies = ", ".join(getattr(sensor, "sensor_names", None) or sensor.body_names)
            described[f"contact/{name}/flag"] = (
                f"1 if the net contact force on the body exceeds {self.cfg.contact_threshold:g} N, else 0 (sensor "
                f"{name}); bodies: {bodies}"
            )
            described[f"contact/{name}/force"] = f"net contact force magnitude (sensor {name}); bodies: {bodies}"
        for name, table in self._shapes.items():
            body_names = self.assets[name].body_names
            shapes = ", ".join(body_names[int(b)] for b in table["body"].tolist())
            described[f"penetration/{name}"] = (
                f"depth of each collision shape below the plane z = {self.cfg.plane_height:g} m above the env origin, "
                f"0 above it; shapes of the bodies: {shapes}"
            )
        if self._end_effector_body is not None:
            robot, body = self.cfg.end_effector
            ee, obj = f"{robot}/{body}", self.cfg.object_name
            described["manipulation/object_pos_in_ee"] = f"position of {obj} in the frame of {ee}"
            described["manipulation/object_rotvec_in_ee"] = f"rotation vector of {obj}'s orientation in {ee}'s frame"
            described["manipulation/goal_pos_in_object"] = f"goal position ({self.cfg.goal_command}) in {obj}'s frame"
            described["manipulation/object_to_goal_distance_xy"] = f"horizontal distance from {obj} to the goal"
        described["flags/terminated"] = "1 if the episode ended at this step by a termination term (not a time-out)"
        described["flags/time_out"] = "1 if the episode ended at this step by its time limit"
        described["flags/success"] = "1 if the task's success term fired at this step"
        return {key: described[key] for key in (*self._labels, *self._flags())}

    # -- buffers ---------------------------------------------------------------------------------------------------

    def _buffer(self, key: str, tensor: torch.Tensor, dtype=wp.float32) -> torch.Tensor:
        """Register ``tensor`` as one of the labeler's buffers, with its Warp view (trailing dimension as ``dtype``)."""
        self._warp[key] = wp.from_torch(tensor, dtype=dtype)
        return tensor

    def _allocate_labels(self) -> dict[str, torch.Tensor]:
        """Every label buffer in the order :meth:`compute` returns them, and the Warp views of all the buffers.
        Multi-horizon labels are allocated whole (one kernel writes every horizon); each horizon's is a view."""
        n, h, roots = self.env.num_envs, len(self.cfg.horizons), len(self.assets)
        zeros = lambda *shape: torch.zeros(*shape, device=self.device)  # noqa: E731
        buffer = self._buffer
        buffer("root_pose", self._root_pose, wp.transform)
        buffer("root_velocity", self._root_velocity, wp.spatial_vector)
        buffer("horizons", torch.tensor(self.cfg.horizons, dtype=torch.int32, device=self.device), wp.int32)
        buffer("energy_prev", self._energy_prev)
        buffer("kinetic_reset", self._reset_energy[0])
        buffer("potential_reset", self._reset_energy[1])
        buffer("plane", self._plane)
        buffer("goal", self._goal, wp.vec3)
        valid = buffer("valid", zeros(h, n))
        roots = {key: buffer(key, zeros(h, n, roots, 3), wp.vec3) for key in _ROOT_DELTAS}
        joints = {}
        for name in self.robot_names:
            buffer(f"{name}/joints", self._joints[name])
            buffer(f"{name}/wrap", self._wrap[name], wp.int32)
            for key in ("joint_pos", "joint_vel"):
                joints[f"{name}/{key}"] = buffer(f"{name}/{key}", zeros(h, n, self._joints[name].shape[-1]))
        labels = {}
        for index, k in enumerate(self.cfg.horizons):
            labels[f"delta_{k}/valid"] = valid[index]
            labels.update({f"delta_{k}/{key}": value[index] for key, value in roots.items()})
            labels.update({f"delta_{k}/{key}": value[index] for key, value in joints.items()})
        for key in ("kinetic", "potential", "total", "delta", "actuator_work"):
            labels[f"energy/{key}"] = buffer(f"energy/{key}", zeros(n))
        for name, sensor in self._contact_sensors().items():
            bodies = sensor.data.net_forces_w.torch.shape[1]
            for key in ("flag", "force"):
                labels[f"contact/{name}/{key}"] = buffer(f"contact/{name}/{key}", zeros(n, bodies))
        for name, table in self._shapes.items():
            labels[f"penetration/{name}"] = buffer(f"penetration/{name}", zeros(n, table["body"].shape[0]))
            for key, dtype in (("body", wp.int32), ("type", wp.int32), ("local", wp.transform), ("scale", wp.vec3)):
                buffer(f"shape/{name}/{key}", table[key], dtype)
        if self._end_effector_body is not None:
            manipulation = {key: buffer(f"manipulation/{key}", zeros(n, 3), wp.vec3) for key in _MANIPULATION}
            manipulation["object_to_goal_distance_xy"] = zeros(n)
            if self.cfg.goal_command is None:  # the goal's position is computed (from zeros) but not returned
                del manipulation["goal_pos_in_object"], manipulation["object_to_goal_distance_xy"]
            labels.update({f"manipulation/{key}": value for key, value in manipulation.items()})
        return labels

    def _launch(self, name: str, kernel, dim, inputs: list, outputs: list) -> None:
        """Launch ``kernel`` through the recorded launch named ``name`` (made on first use)."""
        launch = self._launches.get(name)
        if launch is None:
            launch = self._launches[name] = F.RecordedLaunch(kernel, dim, self.device)
        launch(inputs, outputs)

    def _steps_in_episode(self) -> wp.array:
        """Warp view of the env's episode lengths [steps], (num_envs,) int64, re-made only if the buffer moved."""
        buffer = self.env.episode_length_buf
        if self._episode_view is None or self._episode_view[0] != buffer.data_ptr():
            self._episode_view = (buffer.data_ptr(), wp.from_torch(buffer, dtype=wp.int64))
        return self._episode_view[1]

    # -- history ---------------------------------------------------------------------------------------------------

    def _push(self, slot: int, env_ids: torch.Tensor | None = None) -> None:
        """Write the current state of ``env_ids`` (every env if None) into history ``slot``."""
        for i, asset in enumerate(self.assets.values()):
            pose, velocity = asset.data.root_link_pose_w.torch, asset.data.root_com_vel_w.torch
            if env_ids is None:
                self._root_pose[slot, :, i] = pose
                self._root_velocity[slot, :, i] = velocity
            else:
                self._root_pose[slot, env_ids, i] = pose[env_ids]
                self._root_velocity[slot, env_ids, i] = velocity[env_ids]
        for name in self.robot_names:
            data = self.env.scene[name].data
            if env_ids is None:
                self._joints[name][slot, 0] = data.joint_pos.torch
                self._joints[name][slot, 1] = data.joint_vel.torch
            else:
                self._joints[name][slot, 0, env_ids] = data.joint_pos.torch[env_ids]
                self._joints[name][slot, 1, env_ids] = data.joint_vel.torch[env_ids]

    def _deltas(self, now: int, steps_in_episode: wp.array) -> None:
        w, n, horizons = self._warp, self.env.num_envs, len(self.cfg.horizons)
        self._launch(
            "deltas/root",
            kernels.root_history_delta_kernel,
            (horizons, n, len(self.assets)),
            [w["root_pose"], w["root_velocity"], w["horizons"], now, steps_in_episode],
            [w["valid"], *(w[key] for key in _ROOT_DELTAS)],
        )
        for name in self.robot_names:
            self._launch(
                f"deltas/{name}",
                kernels.joint_history_delta_kernel,
                (horizons, n),
                [w[f"{name}/joints"], w[f"{name}/wrap"], w["horizons"], now, steps_in_episode],
                [w[f"{name}/joint_pos"], w[f"{name}/joint_vel"]],
            )

    # -- energy ----------------------------------------------------------------------------------------------------

    def _body_energies(self, kinetic: str, potential: str) -> None:
        """Kinetic and potential energy [J] of every asset's bodies, into the buffers named by the arguments."""
        gravity = wp.vec3(*(float(g) for g in self.env.sim.cfg.gravity))
        for index, (name, asset) in enumerate(self.assets.items()):
            data = asset.data
            self._launch(
                f"energy/{kinetic}/{name}",
                kernels.body_energy_kernel,
                self.env.num_envs,
                [
                    data.body_com_pose_w.warp,
                    data.body_com_vel_w.warp,
                    data.body_mass.warp,
                    data.body_inertia.warp,
                    gravity,
                    int(index > 0),
                ],
                [self._warp[kinetic], self._warp[potential]],
            )

    def _energies(self, now: int, steps_in_episode: wp.array) -> None:
        w = self._warp
        self._body_energies("energy/kinetic", "energy/potential")
        self._launch(
            "energy/change",
            kernels.energy_change_kernel,
            self.env.num_envs,
            [w["energy/kinetic"], w["energy/potential"], steps_in_episode],
            [w["energy/total"], w["energy/delta"], w["energy_prev"]],
        )
        for index, name in enumerate(self.robot_names):
            self._launch(
                f"energy/work/{name}",
                kernels.actuator_work_history_kernel,
                self.env.num_envs,
                [
                    self.env.scene[name].data.applied_torque.warp,
                    w[f"{name}/joints"],
                    now,
                    float(self.env.step_dt),
                    steps_in_episode,
                    int(index > 0),
                ],
                [w["energy/actuator_work"]],
            )

    # -- contacts and penetration ----------------------------------------------------------------------------------

    def _contact_sensors(self) -> dict:
        from isaaclab.sensors import BaseContactSensor

        return {name: s for name, s in self.env.scene.sensors.items() if isinstance(s, BaseContactSensor)}

    def _contacts(self) -> None:
        for name, sensor in self._contact_sensors().items():
            forces = sensor.data.net_forces_w.torch
            self._launch(
                f"contact/{name}",
                kernels.contact_kernel,
                tuple(forces.shape[:2]),
                [F._vec(forces), float(self.cfg.contact_threshold)],
                [self._warp[f"contact/{name}/flag"], self._warp[f"contact/{name}/force"]],
            )

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

    def _penetrations(self) -> None:
        torch.add(self.env.scene.env_origins[:, 2], self.cfg.plane_height, out=self._plane)
        w = self._warp
        for name, table in self._shapes.items():
            self._launch(
                f"penetration/{name}",
                kernels.plane_penetration_kernel,
                (self.env.num_envs, table["body"].shape[0]),
                [
                    self.assets[name].data.body_link_pose_w.warp,
                    *(w[f"shape/{name}/{key}"] for key in ("body", "type", "local", "scale")),
                    w["plane"],
                ],
                [w[f"penetration/{name}"]],
            )

    # -- manipulation and flags ------------------------------------------------------------------------------------

    def _manipulation(self) -> None:
        cfg = self.cfg
        if self._end_effector_body is None:
            return
        obj = self.env.scene[cfg.object_name].data
        if cfg.goal_command is not None:
            self._goal.copy_(self.env.command_manager.get_term(cfg.goal_command).goal_pos_w)
            # in torch: its CPU norm rounds differently from sqrt(x^2 + y^2), and these labels predate the kernel
            distance = self._labels["manipulation/object_to_goal_distance_xy"]
            torch.linalg.vector_norm((self._goal - obj.root_link_pos_w.torch)[:, :2], dim=-1, out=distance)
        w = self._warp
        self._launch(
            "manipulation",
            kernels.manipulation_kernel,
            self.env.num_envs,
            [
                self.env.scene[cfg.end_effector[0]].data.body_link_pose_w.warp,
                int(self._end_effector_body),
                obj.root_link_pose_w.warp,
                w["goal"],
            ],
            [w[f"manipulation/{key}"] for key in _MANIPULATION],
        )

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
