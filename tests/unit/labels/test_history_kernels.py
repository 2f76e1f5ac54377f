"""The labeler's history kernels (ring buffer in, masked labels out) against scipy, hand-computed values and
closed-form physics; and the recorded launch that replays them.

Tolerances: float32 kernels against float64 references, 1e-5 absolute unless stated.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import warp as wp
from scipy.spatial.transform import Rotation

from wam_isaac.labels import functional as F
from wam_isaac.labels import kernels


def random_quats(n: int, seed: int) -> torch.Tensor:
    return torch.tensor(Rotation.random(n, random_state=seed).as_quat(), dtype=torch.float32)  # xyzw


DEPTH, NUM_ENVS, NUM_ROOTS = 4, 32, 2
HORIZONS = (1, 3)


def root_history(seed: int, now: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random poses and velocities, (DEPTH, NUM_ENVS, NUM_ROOTS, 7 | 6), slot ``now`` the latest, with the edge
    cases planted in envs 0 and 1."""
    g = torch.Generator().manual_seed(seed)
    quats = random_quats(DEPTH * NUM_ENVS * NUM_ROOTS, seed).view(DEPTH, NUM_ENVS, NUM_ROOTS, 4)
    pose = torch.cat([torch.randn(DEPTH, NUM_ENVS, NUM_ROOTS, 3, generator=g), quats], -1)
    velocity = torch.randn(DEPTH, NUM_ENVS, NUM_ROOTS, 6, generator=g)
    # env 0: at rest, the simulator reporting q and -q at alternate steps; env 1: yawing 20 deg a step from +170 deg,
    # across +-pi
    pose[:, 0] = pose[0, 0]
    pose[1::2, 0, :, 3:] *= -1
    velocity[:, 0] = 0
    for slot in range(DEPTH):
        age = (slot - now - 1) % DEPTH  # 0 for the oldest slot
        yaw = Rotation.from_euler("z", math.radians(170.0 + 20.0 * age)).as_quat()
        pose[slot, 1, :, 3:] = torch.tensor(yaw, dtype=torch.float32)
    return pose, velocity


def test_root_history_deltas_match_scipy_and_zero_across_resets():
    now = 1  # the 3-step horizon reads slot 2: the ring buffer wraps
    pose, velocity = root_history(0, now)
    steps = torch.arange(NUM_ENVS) % 5  # 0..4 steps since reset: some shorter than each horizon
    steps[:3] = 4
    valid, dpos_w, dpos_b, drot, dlin, dang = F.root_history_deltas(pose, velocity, HORIZONS, now, steps)
    for h, k in enumerate(HORIZONS):
        prev = (now - k) % DEPTH
        ok = steps >= k
        torch.testing.assert_close(valid[h], ok.float())
        p0, p1 = pose[prev].double().numpy(), pose[now].double().numpy()
        r0 = Rotation.from_quat(p0[..., 3:].reshape(-1, 4))
        r1 = Rotation.from_quat(p1[..., 3:].reshape(-1, 4))
        v0, v1 = velocity[prev].double().numpy().reshape(-1, 6), velocity[now].double().numpy().reshape(-1, 6)
        expected = {
            "dpos_w": (p1[..., :3] - p0[..., :3]).reshape(-1, 3),
            "dpos_b": r0.inv().apply((p1[..., :3] - p0[..., :3]).reshape(-1, 3)),
            "drot": (r0.inv() * r1).as_rotvec(),
            "dlin": r1.inv().apply(v1[:, :3]) - r0.inv().apply(v0[:, :3]),
            "dang": r1.inv().apply(v1[:, 3:]) - r0.inv().apply(v0[:, 3:]),
        }
        got = {"dpos_w": dpos_w, "dpos_b": dpos_b, "drot": drot, "dlin": dlin, "dang": dang}
        mask = ok[:, None].expand(NUM_ENVS, NUM_ROOTS).reshape(-1).numpy()
        for key, value in got.items():
            value = value[h].reshape(-1, 3).numpy()
            np.testing.assert_allclose(value[mask], expected[key][mask], atol=2e-5, rtol=1e-4, err_msg=key)
            assert (value[~mask] == 0).all(), f"{key}: a label spanning a reset must be 0"
        assert drot[h, 0].abs().max() < 1e-6 and dpos_w[h, 0].abs().max() == 0, "at rest, q vs -q: no change"
        turn = torch.full((NUM_ROOTS,), math.radians(20.0 * k))
        torch.testing.assert_close(drot[h, 1, :, 2], turn, atol=2e-5, rtol=0, msg="the short way across +-pi")


@pytest.mark.parametrize("angle", [math.pi - 1e-3, -(math.pi - 1e-3), 0.5, 1e-6])
def test_root_rotation_near_pi_is_the_short_way(angle):
    # a 20 deg yaw from any start, e.g. +179.9 deg to -160.1 deg, is a 20 deg turn, not 340
    start = Rotation.from_euler("z", angle)
    pose = torch.zeros(2, 1, 1, 7)
    pose[0, ..., 3:] = torch.tensor(start.as_quat(), dtype=torch.float32)
    pose[1, ..., 3:] = torch.tensor((start * Rotation.from_euler("z", 20, degrees=True)).as_quat(), dtype=torch.float32)
    _, _, _, drot, _, _ = F.root_history_deltas(pose, torch.zeros(2, 1, 1, 6), (1,), 1, torch.tensor([5]))
    torch.testing.assert_close(drot.view(3), torch.tensor([0.0, 0.0, math.radians(20.0)]), atol=2e-5, rtol=0)


def test_joint_history_deltas_wrap_the_wrapped_joints_and_zero_across_resets():
    joints = torch.zeros(DEPTH, 2, 2, 3)
    joints[0, 0] = torch.tensor([3.1, 3.1, 0.2])  # slot 0: 3 steps before slot 3
    joints[3, 0] = torch.tensor([-3.1, -3.1, 0.5])
    joints[2, 1], joints[3, 1] = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([0.5, 2.5, 3.0])
    steps = torch.tensor([3, 2])  # env 1 was reset 2 steps ago: its 3-step labels would span the reset
    dq, dqd = F.joint_history_deltas(joints, torch.tensor([1, 0, 1]), HORIZONS, 3, steps)
    # 3-step, env 0: joint 0 wraps across pi (+0.0832 rad); joint 1 does not (-6.2)
    torch.testing.assert_close(dq[1, 0], torch.tensor([2 * math.pi - 6.2, -6.2, 0.3]), atol=1e-5, rtol=0)
    torch.testing.assert_close(dqd[1, 0], torch.tensor([0.5, 2.5, 3.0]))
    assert (dq[1, 1] == 0).all() and (dqd[1, 1] == 0).all()
    # 1-step, both envs valid: velocities 1 -> 0.5, 2 -> 2.5, 3 -> 3
    torch.testing.assert_close(dqd[0], torch.tensor([[-0.5, 0.5, 0.0]] * 2))


def test_actuator_work_history_trapezoid_and_first_step():
    joints = torch.zeros(DEPTH, 2, 3, 2)
    joints[0, 1] = torch.tensor([[1.0, 1.0], [3.0, 0.0], [1.0, 1.0]])  # slot 0: one step before slot 1
    joints[1, 1] = torch.tensor([[3.0, -1.0], [3.0, 2.0], [1.0, 1.0]])
    torque = torch.tensor([[2.0, -1.0], [0.0, 5.0], [1.0, 1.0]])
    work = F.actuator_work_history(torque, joints, 1, 0.01, torch.tensor([5, 1, 0]))
    # env 0: 2 * 2 + (-1) * 0 = 4 W; env 1: 5 * 1 = 5 W; times 0.01 s; env 2: its episode's first step
    torch.testing.assert_close(work, torch.tensor([0.04, 0.05, 0.0]))


def test_body_energies_of_two_assets_closed_form_and_equal_to_one_sum():
    # a 2 kg box (0.2 x 0.4 x 0.6 m) spinning at 4 rad/s about its x axis (rotated to the world y axis), and a 1 kg
    # ball at rest, as two assets
    m, (a, b, c) = 2.0, (0.2, 0.4, 0.6)
    box_inertia = torch.tensor([m * (b * b + c * c) / 12, m * (a * a + c * c) / 12, m * (a * a + b * b) / 12])
    quat = torch.tensor(Rotation.from_euler("z", 90, degrees=True).as_quat(), dtype=torch.float32)
    box_pose = torch.cat([torch.tensor([0.3, -0.2, 1.5]), quat]).view(1, 1, 7)
    box_vel = torch.tensor([[[1.0, 2.0, -3.0, 0.0, 4.0, 0.0]]])
    ball_pose = torch.tensor([[[0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 1.0]]])
    kinetic, potential = F.body_energies(
        [box_pose, ball_pose],
        [box_vel, torch.zeros(1, 1, 6)],
        [torch.tensor([[m]]), torch.tensor([[1.0]])],
        [torch.diag(box_inertia).view(1, 1, 9), 0.004 * torch.eye(3).view(1, 1, 9)],
        (0.0, 0.0, -9.81),
    )
    torch.testing.assert_close(kinetic, torch.tensor([0.5 * m * 14.0 + 0.5 * box_inertia[0].item() * 16.0]))
    torch.testing.assert_close(potential, torch.tensor([m * 9.81 * 1.5 + 1.0 * 9.81 * 0.5]))
    # accumulating asset after asset gives the same floats as one asset holding all the bodies
    one_kinetic, one_potential = F.body_energies(
        [torch.cat([box_pose, ball_pose], 1)],
        [torch.cat([box_vel, torch.zeros(1, 1, 6)], 1)],
        [torch.tensor([[m, 1.0]])],
        [torch.cat([torch.diag(box_inertia).view(1, 1, 9), 0.004 * torch.eye(3).view(1, 1, 9)], 1)],
        (0.0, 0.0, -9.81),
    )
    assert torch.equal(kinetic, one_kinetic) and torch.equal(potential, one_potential)


def test_energy_change_and_its_first_step():
    energy_prev = torch.tensor([10.0, 10.0])
    kinetic, potential = torch.tensor([3.0, 3.0]), torch.tensor([8.5, 8.5])
    energy, delta = F.energy_change(kinetic, potential, energy_prev, steps_in_episode=torch.tensor([4, 0]))
    torch.testing.assert_close(energy, torch.tensor([11.5, 11.5]))
    torch.testing.assert_close(delta, torch.tensor([1.5, 0.0]))  # env 1: first step of its episode
    torch.testing.assert_close(energy_prev, torch.tensor([11.5, 11.5]))


def test_manipulation_matches_scipy():
    n = 16
    body_pose = torch.cat([torch.randn(n, 3, 3), random_quats(3 * n, 9).view(n, 3, 4)], -1)
    object_pose = torch.cat([torch.randn(n, 3), random_quats(n, 10)], -1)
    goal = torch.randn(n, 3)
    pos, rot, goal_in_object = F.manipulation(body_pose, 2, object_pose, goal)
    r_ee = Rotation.from_quat(body_pose[:, 2, 3:].double().numpy())
    r_obj = Rotation.from_quat(object_pose[:, 3:].double().numpy())
    ee_to_object = (object_pose[:, :3] - body_pose[:, 2, :3]).double().numpy()
    np.testing.assert_allclose(pos.numpy(), r_ee.inv().apply(ee_to_object), atol=1e-5)
    np.testing.assert_allclose(rot.numpy(), (r_ee.inv() * r_obj).as_rotvec(), atol=2e-5, rtol=1e-4)
    expected_goal = r_obj.inv().apply((goal - object_pose[:, :3]).double().numpy())
    np.testing.assert_allclose(goal_in_object.numpy(), expected_goal, atol=1e-5)


def test_recorded_launch_repacks_changed_scalars_and_arrays():
    view = lambda t, dtype=wp.float32: wp.from_torch(t, dtype=dtype)  # noqa: E731
    kinetic, potential, other = torch.tensor([1.0, 2.0]), torch.tensor([10.0, 20.0]), torch.tensor([5.0, 7.0])
    energy, delta, energy_prev = torch.zeros(2), torch.zeros(2), torch.zeros(2)
    launch = F.RecordedLaunch(kernels.energy_change_kernel, 2, torch.device("cpu"))
    inputs = [view(kinetic), view(potential), view(torch.tensor([3, 3]), wp.int64)]
    outputs = [view(energy), view(delta), view(energy_prev)]
    launch(inputs, outputs)
    torch.testing.assert_close(energy, torch.tensor([11.0, 22.0]))
    inputs[0] = view(other)  # another array: repacked
    launch(inputs, outputs)
    torch.testing.assert_close(energy, torch.tensor([15.0, 27.0]))
    torch.testing.assert_close(delta, torch.tensor([4.0, 5.0]))
    potential[1] = 0.0  # same array, new contents: read in place
    launch(inputs, outputs)
    torch.testing.assert_close(energy, torch.tensor([15.0, 7.0]))
    forces, flag, force = torch.tensor([[[0.0, 0.0, 2.0]]]), torch.zeros(1, 1), torch.zeros(1, 1)
    contact = F.RecordedLaunch(kernels.contact_kernel, (1, 1), torch.device("cpu"))
    for threshold, expected in ((1.0, 1.0), (3.0, 0.0)):  # another scalar: repacked
        contact([view(forces, wp.vec3), threshold], [view(flag), view(force)])
        assert flag.item() == expected


def test_joint_wrap_lands_in_minus_pi_to_pi_for_any_number_of_turns():
    d = torch.tensor([math.pi, -math.pi, 7.0, -7.0, 20.0, 0.25])
    joints = torch.zeros(2, 2, 1, 6)
    joints[1, 0, 0] = d
    dq, _ = F.joint_history_deltas(joints, torch.ones(6, dtype=torch.int32), (1,), 1, torch.tensor([4]))
    expected = torch.atan2(torch.sin(d.double()), torch.cos(d.double())).float()
    expected[:2] = math.pi  # the interval is (-pi, pi]: -pi is pi
    torch.testing.assert_close(dq[0, 0], expected, atol=2e-6, rtol=0)
