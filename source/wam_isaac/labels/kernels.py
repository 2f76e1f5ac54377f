"""Warp kernels computing dense dynamics labels from simulator state, per env (and per body, joint or shape).

Layout follows newton: inputs, then a ``# outputs`` marker, then outputs; ``tid = wp.tid()`` first. Quaternions
are xyzw (Warp, Newton and Isaac Lab 3.0). Every kernel runs on whatever device its arrays live on.
"""

from __future__ import annotations

import warp as wp

GEO_SPHERE = wp.constant(3)
GEO_CAPSULE = wp.constant(4)
GEO_ELLIPSOID = wp.constant(5)
GEO_CYLINDER = wp.constant(6)
GEO_BOX = wp.constant(7)
"""Newton's ``GeoType`` codes of the primitive shapes the penetration kernel handles (others give depth 0)."""


@wp.func
def quat_log(q: wp.quat) -> wp.vec3:
    """Rotation vector [rad] (axis * angle, angle in [0, pi]) of the unit quaternion ``q``.

    ``q`` and ``-q`` are the same rotation: the hemisphere with ``w >= 0`` is taken, so the result is the shortest
    rotation whatever the sign the simulator reports.
    """
    x = q[0]
    y = q[1]
    z = q[2]
    w = q[3]
    if w < 0.0:
        x = -x
        y = -y
        z = -z
        w = -w
    v = wp.vec3(x, y, z)
    s = wp.length(v)
    if s < 1.0e-7:
        # small angle: log(q) ~ 2 v / w
        return v * (2.0 / wp.max(w, 1.0e-7))
    angle = 2.0 * wp.atan2(s, w)
    return v * (angle / s)


@wp.func
def rotation_delta(q_prev: wp.quat, q_now: wp.quat) -> wp.vec3:
    """Rotation vector [rad] of ``q_prev^-1 q_now``: the rotation from the earlier orientation, in its frame."""
    return quat_log(wp.mul(wp.quat_inverse(q_prev), q_now))


@wp.func
def joint_position_delta(q_prev: float, q_now: float, wrap: int) -> float:
    """``q_now - q_prev``, wrapped to (-pi, pi] when ``wrap != 0`` (an unlimited revolute joint crossing +-pi): a
    whole number of turns is added, not ``atan2(sin, cos)`` (three transcendental calls per joint made the joint
    labels the labels' slowest kernel on the CPU)."""
    d = q_now - q_prev
    if wrap != 0:
        d += 2.0 * wp.pi * wp.floor((wp.pi - d) / (2.0 * wp.pi))
    return d


@wp.func
def history_slot(now: int, k: int, depth: int) -> int:
    """Ring-buffer slot of the state ``k`` steps before slot ``now`` (``0 < k < depth``)."""
    return (now + depth - k) % depth


@wp.kernel
def contact_kernel(
    forces: wp.array2d(dtype=wp.vec3),
    threshold: float,
    # outputs
    in_contact: wp.array2d(dtype=wp.float32),
    force_norm: wp.array2d(dtype=wp.float32),
):
    """Contact flag (1 when the contact force exceeds ``threshold`` [N], else 0) and contact force magnitude [N],
    shape (num_envs, num_sensed_bodies)."""
    env, body = wp.tid()
    magnitude = wp.length(forces[env, body])
    force_norm[env, body] = magnitude
    in_contact[env, body] = wp.where(magnitude > threshold, 1.0, 0.0)


@wp.func
def lowest_point_z(shape_type: int, center: wp.vec3, rotation: wp.quat, scale: wp.vec3) -> float:
    """Height [m] of the lowest point of a primitive shape (Newton's conventions: sphere ``scale.x`` = radius; box
    ``scale`` = half extents; capsule and cylinder along local Z, ``scale`` = (radius, half height); ellipsoid
    ``scale`` = semi-axes). Unhandled types return +inf (never penetrating)."""
    axis_z = wp.quat_rotate(rotation, wp.vec3(0.0, 0.0, 1.0))
    if shape_type == GEO_SPHERE:
        return center[2] - scale[0]
    if shape_type == GEO_BOX:
        ex = wp.quat_rotate(rotation, wp.vec3(1.0, 0.0, 0.0))
        ey = wp.quat_rotate(rotation, wp.vec3(0.0, 1.0, 0.0))
        return center[2] - (wp.abs(ex[2]) * scale[0] + wp.abs(ey[2]) * scale[1] + wp.abs(axis_z[2]) * scale[2])
    if shape_type == GEO_CAPSULE:
        return center[2] - wp.abs(axis_z[2]) * scale[1] - scale[0]
    if shape_type == GEO_CYLINDER:
        tilt = wp.sqrt(wp.max(1.0 - axis_z[2] * axis_z[2], 0.0))
        return center[2] - wp.abs(axis_z[2]) * scale[1] - tilt * scale[0]
    if shape_type == GEO_ELLIPSOID:
        ex = wp.quat_rotate(rotation, wp.vec3(1.0, 0.0, 0.0))
        ey = wp.quat_rotate(rotation, wp.vec3(0.0, 1.0, 0.0))
        a = ex[2] * scale[0]
        b = ey[2] * scale[1]
        c = axis_z[2] * scale[2]
        return center[2] - wp.sqrt(a * a + b * b + c * c)
    return 1.0e30


@wp.kernel
def plane_penetration_kernel(
    body_pose: wp.array2d(dtype=wp.transform),
    shape_body: wp.array(dtype=wp.int32),
    shape_type: wp.array(dtype=wp.int32),
    shape_local: wp.array(dtype=wp.transform),
    shape_scale: wp.array(dtype=wp.vec3),
    plane_height: wp.array(dtype=wp.float32),
    # outputs
    depth: wp.array2d(dtype=wp.float32),
):
    """Penetration depth [m] of each collision shape below the horizontal plane ``z = plane_height[env]`` (ground
    or table top), shape (num_envs, num_shapes); 0 when the shape is above it."""
    env, shape = wp.tid()
    pose = wp.transform_multiply(body_pose[env, shape_body[shape]], shape_local[shape])
    lowest = lowest_point_z(
        shape_type[shape], wp.transform_get_translation(pose), wp.transform_get_rotation(pose), shape_scale[shape]
    )
    depth[env, shape] = wp.max(plane_height[env] - lowest, 0.0)


# -- history kernels: they read the labeler's state ring buffer and the simulator's buffers in place, zero labels
# whose horizon spans a reset, and write into preallocated outputs (one launch per label group, no masking pass).


@wp.kernel
def root_history_delta_kernel(
    pose: wp.array3d(dtype=wp.transform),
    velocity: wp.array3d(dtype=wp.spatial_vector),
    horizons: wp.array(dtype=wp.int32),
    now: int,
    steps_in_episode: wp.array(dtype=wp.int64),
    # outputs
    valid: wp.array2d(dtype=wp.float32),
    dpos_world: wp.array3d(dtype=wp.vec3),
    dpos_local: wp.array3d(dtype=wp.vec3),
    drot: wp.array3d(dtype=wp.vec3),
    dlin_vel_body: wp.array3d(dtype=wp.vec3),
    dang_vel_body: wp.array3d(dtype=wp.vec3),
):
    """Root pose and body-frame velocity changes over each horizon, shape (num_horizons, num_envs, num_roots).

    ``pose`` (world ``[p, q]``) and ``velocity`` (world ``[v, w]`` of the center of mass) are ring buffers of shape
    (depth, num_envs, num_roots) whose slot ``now`` holds the current step. For horizon ``k = horizons[h]``, between
    the slot ``k`` steps back (``prev``) and ``now``:

    - ``dpos_world`` [m]: ``p_now - p_prev`` in the world frame;
    - ``dpos_local`` [m]: the same displacement in the earlier pose's frame, ``R_prev^T (p_now - p_prev)``;
    - ``drot`` [rad]: rotation vector of ``q_prev^-1 q_now`` (the rotation in the earlier pose's frame);
    - ``dlin_vel_body``, ``dang_vel_body`` [m/s, rad/s]: each velocity expressed in its body's frame at its own time,
      then differenced.

    ``valid[h, env]`` is 1 when the env's episode has lasted at least ``k`` steps, else 0 and every label of that env
    and horizon is 0 (it would span a reset).
    """
    h, env, root = wp.tid()
    k = horizons[h]
    ok = steps_in_episode[env] >= wp.int64(k)
    if root == 0:
        valid[h, env] = wp.where(ok, 1.0, 0.0)
    zero = wp.vec3(0.0, 0.0, 0.0)
    if not ok:
        dpos_world[h, env, root] = zero
        dpos_local[h, env, root] = zero
        drot[h, env, root] = zero
        dlin_vel_body[h, env, root] = zero
        dang_vel_body[h, env, root] = zero
        return
    prev = history_slot(now, k, pose.shape[0])
    q0 = wp.transform_get_rotation(pose[prev, env, root])
    q1 = wp.transform_get_rotation(pose[now, env, root])
    delta = wp.transform_get_translation(pose[now, env, root]) - wp.transform_get_translation(pose[prev, env, root])
    dpos_world[h, env, root] = delta
    dpos_local[h, env, root] = wp.quat_rotate_inv(q0, delta)
    drot[h, env, root] = rotation_delta(q0, q1)
    v0 = velocity[prev, env, root]
    v1 = velocity[now, env, root]
    lin0, lin1 = wp.spatial_top(v0), wp.spatial_top(v1)
    ang0, ang1 = wp.spatial_bottom(v0), wp.spatial_bottom(v1)
    dlin_vel_body[h, env, root] = wp.quat_rotate_inv(q1, lin1) - wp.quat_rotate_inv(q0, lin0)
    dang_vel_body[h, env, root] = wp.quat_rotate_inv(q1, ang1) - wp.quat_rotate_inv(q0, ang0)


@wp.kernel
def joint_history_delta_kernel(
    joints: wp.array4d(dtype=wp.float32),
    wrap: wp.array(dtype=wp.int32),
    horizons: wp.array(dtype=wp.int32),
    now: int,
    steps_in_episode: wp.array(dtype=wp.int64),
    # outputs
    dq: wp.array3d(dtype=wp.float32),
    dqd: wp.array3d(dtype=wp.float32),
):
    """Joint position and velocity changes over each horizon, shape (num_horizons, num_envs, num_joints).

    ``joints`` is a ring buffer of shape (depth, 2, num_envs, num_joints) (positions, then velocities) whose slot
    ``now`` holds the current step; the position change of joints with ``wrap[j] != 0`` (unlimited revolute joints) is
    wrapped to (-pi, pi], so crossing +-pi is a small step. Labels of an env whose episode is shorter than the horizon
    are 0.
    """
    h, env = wp.tid()  # one thread per env and horizon looping over the joints: a thread costs ~20 ns on the CPU
    k = horizons[h]
    ok = steps_in_episode[env] >= wp.int64(k)
    prev = history_slot(now, k, joints.shape[0])
    for joint in range(joints.shape[3]):
        if ok:
            q = joint_position_delta(joints[prev, 0, env, joint], joints[now, 0, env, joint], wrap[joint])
            dq[h, env, joint] = q
            dqd[h, env, joint] = joints[now, 1, env, joint] - joints[prev, 1, env, joint]
        else:
            dq[h, env, joint] = 0.0
            dqd[h, env, joint] = 0.0


@wp.kernel
def actuator_work_history_kernel(
    torque: wp.array2d(dtype=wp.float32),
    joints: wp.array4d(dtype=wp.float32),
    now: int,
    dt: float,
    steps_in_episode: wp.array(dtype=wp.int64),
    accumulate: int,
    # outputs
    work: wp.array(dtype=wp.float32),
):
    """Work done by the actuators over the last step [J], shape (num_envs,): ``sum_j tau_j (qd_prev_j + qd_now_j) / 2
    dt`` (trapezoidal rule, torque held over the step), the joint velocities read from the ring buffer ``joints``
    (depth, 2, num_envs, num_joints) at slots ``now - 1`` and ``now``. Added to ``work`` when ``accumulate != 0``
    (several robots); 0 on an episode's first step."""
    env = wp.tid()
    if steps_in_episode[env] < wp.int64(1):
        work[env] = 0.0
        return
    prev = history_slot(now, 1, joints.shape[0])
    total = float(0.0)  # noqa: UP018 (a mutable Warp local needs the constructor)
    for joint in range(torque.shape[1]):
        total += torque[env, joint] * 0.5 * (joints[prev, 1, env, joint] + joints[now, 1, env, joint])
    done = total * dt
    if accumulate != 0:
        done = work[env] + done
    work[env] = done


@wp.kernel
def body_energy_kernel(
    com_pose: wp.array2d(dtype=wp.transform),
    com_vel: wp.array2d(dtype=wp.spatial_vector),
    mass: wp.array2d(dtype=wp.float32),
    inertia: wp.array3d(dtype=wp.float32),
    gravity: wp.vec3,
    accumulate: int,
    # outputs
    kinetic: wp.array(dtype=wp.float32),
    potential: wp.array(dtype=wp.float32),
):
    """Kinetic and potential energy [J] of one asset's bodies, shape (num_envs,): ``kinetic = sum_b 1/2 m_b |v_b|^2 +
    1/2 w_b^T I_b w_b`` with ``v_b`` the center-of-mass velocity, ``w_b`` the angular velocity in the body's frame and
    ``I_b`` the inertia about the center of mass in that frame; ``potential = -sum_b m_b g . p_b`` (zero at the world
    origin). Added to ``kinetic`` and ``potential`` when ``accumulate != 0`` (body after body, so summing the assets
    one launch each gives the same floats as one sum over all their bodies).

    Inputs are Isaac Lab's body center-of-mass poses ``[p, q]`` and velocities ``[v, w]`` (world frame), masses
    [kg] and inertias about the center of mass in its frame, flattened row-major to 9 [kg m^2].
    """
    env = wp.tid()
    ke = float(0.0)  # noqa: UP018 (a mutable Warp local needs the constructor)
    pe = float(0.0)  # noqa: UP018 (a mutable Warp local needs the constructor)
    if accumulate != 0:
        ke = kinetic[env]
        pe = potential[env]
    for body in range(mass.shape[1]):
        m = mass[env, body]
        pose = com_pose[env, body]
        v = wp.spatial_top(com_vel[env, body])
        w_body = wp.quat_rotate_inv(wp.transform_get_rotation(pose), wp.spatial_bottom(com_vel[env, body]))
        i = inertia[env, body]
        inertia_body = wp.mat33(i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8])
        ke += 0.5 * m * wp.dot(v, v) + 0.5 * wp.dot(w_body, inertia_body * w_body)
        pe -= m * wp.dot(gravity, wp.transform_get_translation(pose))
    kinetic[env] = ke
    potential[env] = pe


@wp.kernel
def energy_change_kernel(
    kinetic: wp.array(dtype=wp.float32),
    potential: wp.array(dtype=wp.float32),
    steps_in_episode: wp.array(dtype=wp.int64),
    # outputs
    energy: wp.array(dtype=wp.float32),
    energy_delta: wp.array(dtype=wp.float32),
    energy_prev: wp.array(dtype=wp.float32),
):
    """Mechanical energy ``kinetic + potential`` [J] and its change since ``energy_prev`` (0 on an episode's first
    step), shape (num_envs,); ``energy_prev`` is read, then overwritten with the energy (the next step's start)."""
    env = wp.tid()
    total = kinetic[env] + potential[env]
    energy[env] = total
    energy_delta[env] = wp.where(steps_in_episode[env] >= wp.int64(1), total - energy_prev[env], 0.0)
    energy_prev[env] = total


@wp.kernel
def manipulation_kernel(
    body_pose: wp.array2d(dtype=wp.transform),
    end_effector: int,
    object_pose: wp.array(dtype=wp.transform),
    goal_pos: wp.array(dtype=wp.vec3),
    # outputs
    object_pos_in_ee: wp.array(dtype=wp.vec3),
    object_rotvec_in_ee: wp.array(dtype=wp.vec3),
    goal_pos_in_object: wp.array(dtype=wp.vec3),
):
    """Relative poses of a manipulation task, shape (num_envs,): the object's pose in the end effector's frame
    (body ``end_effector`` of ``body_pose``): position ``R_ee^T (p_object - p_ee)`` [m] and rotation vector of
    ``q_ee^-1 q_object`` [rad]; and the goal's position in the object's frame [m]."""
    env = wp.tid()
    ee = body_pose[env, end_effector]
    q_ee = wp.transform_get_rotation(ee)
    p_object = wp.transform_get_translation(object_pose[env])
    q_object = wp.transform_get_rotation(object_pose[env])
    object_pos_in_ee[env] = wp.quat_rotate_inv(q_ee, p_object - wp.transform_get_translation(ee))
    object_rotvec_in_ee[env] = rotation_delta(q_ee, q_object)
    goal_pos_in_object[env] = wp.quat_rotate_inv(q_object, goal_pos[env] - p_object)
