"""Torch-facing wrappers of the label kernels: tensors in, tensors out, on the tensors' device.

Inputs are viewed as Warp arrays without a copy (``wp.from_torch``): pass Isaac Lab's zero-copy ``ProxyArray.torch``
views of the simulator's state and the kernels read it in place. Outputs are allocated on the same device.
Quaternions are xyzw.
"""

from __future__ import annotations

from collections import OrderedDict

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
    if tensor.dtype != torch.float32 and dtype is not wp.int32:
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


def pose_delta(
    pos_prev: torch.Tensor, quat_prev: torch.Tensor, pos_now: torch.Tensor, quat_now: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pose change between two times. Inputs (num_envs, num_poses, 3|4) [m], xyzw.

    Returns:
        ``dpos_world`` [m], ``dpos_local`` [m] (in the earlier pose's frame), ``drot`` [rad] (rotation vector of
        ``q_prev^-1 q_now``), each of shape (num_envs, num_poses, 3).
    """
    outs = [torch.empty_like(pos_prev, dtype=torch.float32) for _ in range(3)]
    _launch(
        kernels.pose_delta_kernel,
        pos_prev.shape[:2],
        [_vec(pos_prev), _vec(quat_prev), _vec(pos_now), _vec(quat_now)],
        [_vec(o, cache=False) for o in outs],
        pos_prev.device,
    )
    return tuple(outs)


def body_velocity_delta(
    quat_prev: torch.Tensor,
    lin_vel_prev: torch.Tensor,
    ang_vel_prev: torch.Tensor,
    quat_now: torch.Tensor,
    lin_vel_now: torch.Tensor,
    ang_vel_now: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Change of body-frame linear [m/s] and angular [rad/s] velocities, each (num_envs, num_bodies, 3); the inputs
    are world-frame velocities and xyzw orientations of shape (num_envs, num_bodies, 3|4)."""
    outs = [torch.empty_like(lin_vel_prev, dtype=torch.float32) for _ in range(2)]
    _launch(
        kernels.body_velocity_delta_kernel,
        lin_vel_prev.shape[:2],
        [_vec(t) for t in (quat_prev, lin_vel_prev, ang_vel_prev, quat_now, lin_vel_now, ang_vel_now)],
        [_vec(o, cache=False) for o in outs],
        lin_vel_prev.device,
    )
    return tuple(outs)


def joint_delta(
    q_prev: torch.Tensor, qd_prev: torch.Tensor, q_now: torch.Tensor, qd_now: torch.Tensor, wrap: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Joint position [rad | m] and velocity [rad/s | m/s] changes, each (num_envs, num_joints); positions of joints
    with ``wrap[j]`` set are differenced on the circle (result in (-pi, pi])."""
    outs = [torch.empty_like(q_prev, dtype=torch.float32) for _ in range(2)]
    _launch(
        kernels.joint_delta_kernel,
        q_prev.shape,
        [_view(q_prev), _view(qd_prev), _view(q_now), _view(qd_now), _view(wrap.to(torch.int32), wp.int32)],
        [_view(o, cache=False) for o in outs],
        q_prev.device,
    )
    return tuple(outs)


def mechanical_energy(
    com_pos: torch.Tensor,
    com_quat: torch.Tensor,
    com_lin_vel: torch.Tensor,
    ang_vel: torch.Tensor,
    mass: torch.Tensor,
    inertia: torch.Tensor,
    gravity: tuple[float, float, float],
    energy_prev: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """Kinetic, potential and total mechanical energy [J] and its change since ``energy_prev``, each (num_envs,).

    Args:
        com_pos, com_quat, com_lin_vel, ang_vel: body centers of mass (world frame), (num_envs, num_bodies, 3|4).
        mass: [kg], (num_envs, num_bodies). inertia: about the COM in the body frame [kg m^2], (..., 9) or (..., 3, 3).
        gravity: [m/s^2], world frame. energy_prev: [J], (num_envs,).
    """
    n = mass.shape[0]
    outs = {name: torch.empty(n, device=mass.device) for name in ("kinetic", "potential", "energy", "energy_delta")}
    inertia = inertia.reshape(*mass.shape, 3, 3)
    _launch(
        kernels.mechanical_energy_kernel,
        n,
        [
            _vec(com_pos),
            _vec(com_quat),
            _vec(com_lin_vel),
            _vec(ang_vel),
            _view(mass),
            _view(inertia, wp.mat33),
            wp.vec3(*gravity),
            _view(energy_prev),
        ],
        [_view(o, cache=False) for o in outs.values()],
        mass.device,
    )
    return outs


def actuator_work(torque: torch.Tensor, qd_prev: torch.Tensor, qd_now: torch.Tensor, dt: float) -> torch.Tensor:
    """Work done by the actuators over a step of ``dt`` [s], in [J], shape (num_envs,)."""
    work = torch.empty(torque.shape[0], device=torque.device)
    _launch(
        kernels.actuator_work_kernel,
        torque.shape[0],
        [_view(torque), _view(qd_prev), _view(qd_now), float(dt)],
        [_view(work, cache=False)],
        torque.device,
    )
    return work


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


def relative_pose(
    pos_a: torch.Tensor, quat_a: torch.Tensor, pos_b: torch.Tensor, quat_b: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pose of frame b in frame a: position [m] and rotation vector [rad], each (num_envs, 3)."""
    outs = [torch.empty_like(pos_a, dtype=torch.float32) for _ in range(2)]
    _launch(
        kernels.relative_pose_kernel,
        pos_a.shape[0],
        [_vec(pos_a), _vec(quat_a), _vec(pos_b), _vec(quat_b)],
        [_vec(o, cache=False) for o in outs],
        pos_a.device,
    )
    return tuple(outs)
