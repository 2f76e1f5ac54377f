"""Torch-facing wrappers of the label kernels: tensors in, tensors out, on the tensors' device.

Inputs are viewed as Warp arrays without a copy (``wp.from_torch``): pass Isaac Lab's zero-copy ``ProxyArray.torch``
views of the simulator's state and the kernels read it in place. Outputs are allocated on the same device.
Quaternions are xyzw.

The labeler's per-step path launches the history kernels through :class:`RecordedLaunch` (arguments packed once) on
Warp arrays it keeps; the wrappers here allocate their outputs and serve tests, benchmarks and one-off uses.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
import warp as wp

from . import kernels

wp.init()  # Warp must be initialized before torch tensors can be viewed as Warp arrays

_WP = {3: wp.vec3, 4: wp.quat, 7: wp.transform}

_VIEWS: OrderedDict[tuple, wp.array] = OrderedDict()
"""Warp views of recently seen tensors, keyed by memory layout. Building a view costs tens of microseconds; the
labeler passes the same simulator buffers and history slots every step, so most lookups hit. A cached view holds
its tensor alive, so the cache is bounded."""
_MAX_VIEWS = 512


def _view(tensor: torch.Tensor, dtype=None, cache: bool = True) -> wp.array:
    """A Warp view of ``tensor`` (no copy); the trailing dimension becomes the vector dtype when given. Freshly
    allocated outputs pass ``cache=False`` (they are seen once)."""
    tensor = tensor.contiguous() if not tensor.is_contiguous() else tensor
    if tensor.dtype != torch.float32 and dtype not in (wp.int32, wp.int64):
        tensor = tensor.float()
    if not cache:
        return wp.from_torch(tensor, dtype=dtype)
    key = (tensor.data_ptr(), tuple(tensor.shape), tuple(tensor.stride()), tensor.dtype, tensor.device, dtype)
    view = _VIEWS.get(key)
    if view is None:
        view = _VIEWS[key] = wp.from_torch(tensor, dtype=dtype)
        if len(_VIEWS) > _MAX_VIEWS:
            _VIEWS.popitem(last=False)
    else:
        _VIEWS.move_to_end(key)
    return view


def _vec(tensor: torch.Tensor, cache: bool = True) -> wp.array:
    return _view(tensor, _WP[tensor.shape[-1]], cache)


def _launch(kernel, dim, inputs, outputs, device: torch.device) -> None:
    wp.launch(kernel, dim=dim, inputs=inputs, outputs=outputs, device=wp.device_from_torch(device))


class RecordedLaunch:
    """One launch site of a kernel, its arguments packed once and replayed.

    ``wp.launch`` packs every argument on every call (tens of microseconds per launch on the CPU); the labeler
    passes the same arrays each step (its own buffers, Isaac Lab's state buffers), so only arguments that changed
    since the previous call (another array object, another scalar value) are packed again.
    """

    def __init__(self, kernel, dim: int | Sequence[int], device: torch.device):
        self.kernel = kernel
        self.dim = dim
        self.device = wp.device_from_torch(device)
        self._command = None
        self._args: tuple = ()

    def __call__(self, inputs: Sequence, outputs: Sequence) -> None:
        """Launch with ``inputs`` and ``outputs`` (Warp arrays and scalars, as for ``wp.launch``)."""
        args = (*inputs, *outputs)
        if self._command is None:
            self._command = wp.launch(
                self.kernel, dim=self.dim, inputs=inputs, outputs=outputs, device=self.device, record_cmd=True
            )
        else:
            for index, (old, new) in enumerate(zip(self._args, args, strict=True)):
                if old is not new and (isinstance(new, wp.array) or old != new):
                    self._command.set_param_at_index(index, new)
        self._args = args
        self._command.launch()


def contact(forces: torch.Tensor, threshold: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Contact flags (0/1) and contact force magnitudes [N], each (num_envs, num_bodies), from net contact forces
    (num_envs, num_bodies, 3) [N]."""
    outs = [torch.empty(forces.shape[:2], device=forces.device) for _ in range(2)]
    _launch(
        kernels.contact_kernel,
        forces.shape[:2],
        [_vec(forces), float(threshold)],
        [_view(o, cache=False) for o in outs],
        forces.device,
    )
    return tuple(outs)


def plane_penetration(
    body_pose: torch.Tensor,
    shape_body: torch.Tensor,
    shape_type: torch.Tensor,
    shape_local: torch.Tensor,
    shape_scale: torch.Tensor,
    plane_height: torch.Tensor,
) -> torch.Tensor:
    """Penetration depth [m] of each shape below the plane ``z = plane_height[env]``, shape (num_envs, num_shapes).

    Args:
        body_pose: body poses ``[x, y, z, qx, qy, qz, qw]`` in the world frame, (num_envs, num_bodies, 7).
        shape_body: body index of each shape, (num_shapes,). shape_type: Newton ``GeoType`` codes, (num_shapes,).
        shape_local: shape pose in its body's frame, (num_shapes, 7). shape_scale: Newton shape scale, (num_shapes, 3).
        plane_height: [m], (num_envs,).
    """
    depth = torch.empty(body_pose.shape[0], shape_body.shape[0], device=body_pose.device)
    _launch(
        kernels.plane_penetration_kernel,
        depth.shape,
        [
            _vec(body_pose),
            _view(shape_body.to(torch.int32), wp.int32),
            _view(shape_type.to(torch.int32), wp.int32),
            _vec(shape_local),
            _vec(shape_scale),
            _view(plane_height),
        ],
        [_view(depth, cache=False)],
        body_pose.device,
    )
    return depth


# -- the history kernels with allocated outputs, for tests, benchmarks and one-off uses ------------------------------


def root_history_deltas(
    pose: torch.Tensor, velocity: torch.Tensor, horizons: Sequence[int], now: int, steps_in_episode: torch.Tensor
) -> tuple[torch.Tensor, ...]:
    """Root pose and body-frame velocity changes over each horizon from a ring buffer of states.

    Args:
        pose: world poses ``[p, q]`` [m, xyzw], (depth, num_envs, num_roots, 7); slot ``now`` is the current step.
        velocity: world center-of-mass velocities ``[v, w]`` [m/s, rad/s], (depth, num_envs, num_roots, 6).
        horizons: [steps], each in [1, depth). steps_in_episode: steps since each env's reset, (num_envs,).

    Returns:
        ``valid`` (num_horizons, num_envs) and ``dpos_world``, ``dpos_local``, ``drot``, ``dlin_vel_body``,
        ``dang_vel_body``, each (num_horizons, num_envs, num_roots, 3); labels spanning a reset are 0.
    """
    h, n, r = len(horizons), pose.shape[1], pose.shape[2]
    valid = torch.empty(h, n, device=pose.device)
    outs = [torch.empty(h, n, r, 3, device=pose.device) for _ in range(5)]
    _launch(
        kernels.root_history_delta_kernel,
        (h, n, r),
        [
            _view(pose, wp.transform),
            _view(velocity, wp.spatial_vector),
            _view(torch.as_tensor(horizons, dtype=torch.int32, device=pose.device), wp.int32),
            int(now),
            _view(steps_in_episode.long(), wp.int64),
        ],
        [_view(valid, cache=False)] + [_vec(o, cache=False) for o in outs],
        pose.device,
    )
    return (valid, *outs)


def joint_history_deltas(
    joints: torch.Tensor, wrap: torch.Tensor, horizons: Sequence[int], now: int, steps_in_episode: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint position and velocity changes over each horizon, each (num_horizons, num_envs, num_joints), from a
    ring buffer ``joints`` (depth, 2, num_envs, num_joints) of positions and velocities; position changes of joints
    with ``wrap != 0`` are wrapped to (-pi, pi]."""
    h, n, j = len(horizons), joints.shape[2], joints.shape[3]
    outs = [torch.empty(h, n, j, device=joints.device) for _ in range(2)]
    _launch(
        kernels.joint_history_delta_kernel,
        (h, n),
        [
            _view(joints),
            _view(wrap.to(torch.int32), wp.int32),
            _view(torch.as_tensor(horizons, dtype=torch.int32, device=joints.device), wp.int32),
            int(now),
            _view(steps_in_episode.long(), wp.int64),
        ],
        [_view(o, cache=False) for o in outs],
        joints.device,
    )
    return tuple(outs)


def actuator_work_history(
    torque: torch.Tensor, joints: torch.Tensor, now: int, dt: float, steps_in_episode: torch.Tensor
) -> torch.Tensor:
    """Actuator work [J] over the step ending at slot ``now`` of the joint ring buffer (depth, 2, num_envs,
    num_joints), shape (num_envs,), by the trapezoidal rule; 0 on an episode's first step."""
    work = torch.empty(torque.shape[0], device=torque.device)
    _launch(
        kernels.actuator_work_history_kernel,
        torque.shape[0],
        [_view(torque), _view(joints), int(now), float(dt), _view(steps_in_episode.long(), wp.int64), 0],
        [_view(work, cache=False)],
        torque.device,
    )
    return work


def body_energies(
    com_pose: Sequence[torch.Tensor],
    com_vel: Sequence[torch.Tensor],
    mass: Sequence[torch.Tensor],
    inertia: Sequence[torch.Tensor],
    gravity: tuple[float, float, float],
) -> tuple[torch.Tensor, torch.Tensor]:
    """Kinetic and potential energy [J] of several assets' bodies together, each (num_envs,): one launch per asset.

    Args:
        com_pose, com_vel: per asset, center-of-mass poses ``[p, q]`` and velocities ``[v, w]`` (world frame),
            (num_envs, num_bodies, 7|6). mass: [kg], (num_envs, num_bodies). inertia: about the center of mass in
            its frame [kg m^2], (num_envs, num_bodies, 9). gravity: [m/s^2], world frame.
    """
    n = mass[0].shape[0]
    kinetic, potential = torch.empty(n, device=mass[0].device), torch.empty(n, device=mass[0].device)
    for index, (pose, vel, m, i) in enumerate(zip(com_pose, com_vel, mass, inertia, strict=True)):
        _launch(
            kernels.body_energy_kernel,
            n,
            [_view(pose, wp.transform), _view(vel, wp.spatial_vector), _view(m), _view(i), wp.vec3(*gravity), index],
            [_view(kinetic, cache=False), _view(potential, cache=False)],
            m.device,
        )
    return kinetic, potential


def energy_change(
    kinetic: torch.Tensor, potential: torch.Tensor, energy_prev: torch.Tensor, steps_in_episode: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mechanical energy [J] and its change since ``energy_prev`` (0 on an episode's first step), each (num_envs,);
    ``energy_prev`` is overwritten with the energy."""
    outs = [torch.empty_like(kinetic) for _ in range(2)]
    _launch(
        kernels.energy_change_kernel,
        kinetic.shape[0],
        [_view(kinetic), _view(potential), _view(steps_in_episode.long(), wp.int64)],
        [_view(o, cache=False) for o in outs] + [_view(energy_prev)],
        kinetic.device,
    )
    return tuple(outs)


def manipulation(
    body_pose: torch.Tensor, end_effector: int, object_pose: torch.Tensor, goal_pos: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Object pose in the end effector's frame (position [m], rotation vector [rad]) and goal position in the
    object's frame [m], each (num_envs, 3).

    Args:
        body_pose: the robot's body poses ``[p, q]``, (num_envs, num_bodies, 7); ``end_effector`` indexes a body.
        object_pose: (num_envs, 7). goal_pos: [m], (num_envs, 3).
    """
    outs = [torch.empty(object_pose.shape[0], 3, device=object_pose.device) for _ in range(3)]
    _launch(
        kernels.manipulation_kernel,
        object_pose.shape[0],
        [_view(body_pose, wp.transform), int(end_effector), _view(object_pose, wp.transform), _vec(goal_pos)],
        [_vec(o, cache=False) for o in outs],
        object_pose.device,
    )
    return tuple(outs)
