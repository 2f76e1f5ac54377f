"""The Warp label kernels the labeler runs every step vs the same labels computed in torch (with Isaac Lab's own
quaternion utilities), on the same device, at 4096 envs, side by side in one run.

Labels timed (one "step" of labeling), from a ring buffer of the last 9 states as the labeler keeps it, for horizons
1 and 8, zeroed where a horizon spans a reset: root pose deltas (world and local displacement, rotation vector) and
body-frame velocity deltas of 2 roots, joint position/velocity deltas of 12 joints (with wrapping), mechanical energy
of 13 bodies and its change, actuator work of 12 joints. The Warp side goes through the allocating wrappers of
:mod:`wam_isaac.labels.functional` (the labeler itself replays recorded launches on buffers it keeps, which is
cheaper). Target: Warp >= 3x faster on the CPU.
"""

from __future__ import annotations

import time

import torch

NUM_ENVS = 4096
TARGET = 3.0
DEPTH, HORIZONS, NOW, DT = 9, (1, 8), 4, 0.02


def _inputs(n: int, device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def quats(*shape):
        q = torch.randn(*shape, 4, generator=g)
        return (q / q.norm(dim=-1, keepdim=True)).to(device)

    def vecs(*shape):
        return torch.randn(*shape, generator=g).to(device)

    return {
        "pose": torch.cat([vecs(DEPTH, n, 2, 3), quats(DEPTH, n, 2)], -1),
        "velocity": vecs(DEPTH, n, 2, 6),
        "joints": vecs(DEPTH, 2, n, 12),
        "wrap": torch.ones(12, dtype=torch.int32, device=device),
        "steps": torch.randint(0, 12, (n,), generator=g).to(device),  # some episodes shorter than a horizon
        "torque": vecs(n, 12),
        "com_pose": torch.cat([vecs(n, 13, 3), quats(n, 13)], -1),
        "com_vel": vecs(n, 13, 6),
        "mass": vecs(n, 13).abs(),
        "inertia": torch.eye(3, device=device).repeat(n, 13, 1, 1).reshape(n, 13, 9),
        "energy_prev": vecs(n),
    }


def warp_labels(x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    from wam_isaac.labels import functional as F

    out = list(F.root_history_deltas(x["pose"], x["velocity"], HORIZONS, NOW, x["steps"]))
    out += F.joint_history_deltas(x["joints"], x["wrap"], HORIZONS, NOW, x["steps"])
    kinetic, potential = F.body_energies([x["com_pose"]], [x["com_vel"]], [x["mass"]], [x["inertia"]], (0, 0, -9.81))
    out += [kinetic, potential, *F.energy_change(kinetic, potential, x["energy_prev"].clone(), x["steps"])]
    out.append(F.actuator_work_history(x["torque"], x["joints"], NOW, DT, x["steps"]))
    return out


def torch_labels(x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    import isaaclab.utils.math as m

    steps = x["steps"]
    pose, velocity, joints = x["pose"], x["velocity"], x["joints"]
    valid, roots, dq, dqd = [], [[] for _ in range(5)], [], []
    for k in HORIZONS:
        prev = (NOW - k) % DEPTH
        ok = steps >= k
        p0, q0, p1, q1 = pose[prev, ..., :3], pose[prev, ..., 3:], pose[NOW, ..., :3], pose[NOW, ..., 3:]
        v0, w0, v1, w1 = *velocity[prev].split(3, -1), *velocity[NOW].split(3, -1)
        dpos = p1 - p0  # Isaac Lab 3.0's math utilities take xyzw, like Warp
        values = (
            dpos,
            m.quat_apply_inverse(q0, dpos),
            m.axis_angle_from_quat(m.quat_unique(m.quat_mul(m.quat_inv(q0), q1))),
            m.quat_apply_inverse(q1, v1) - m.quat_apply_inverse(q0, v0),
            m.quat_apply_inverse(q1, w1) - m.quat_apply_inverse(q0, w0),
        )
        for out, value in zip(roots, values, strict=True):
            out.append(torch.where(ok[:, None, None], value, 0.0))
        valid.append(ok.float())
        d = joints[NOW, 0] - joints[prev, 0]
        d = torch.where(x["wrap"].bool(), torch.atan2(torch.sin(d), torch.cos(d)), d)
        dq.append(torch.where(ok[:, None], d, 0.0))
        dqd.append(torch.where(ok[:, None], joints[NOW, 1] - joints[prev, 1], 0.0))
    com_pos, com_quat = x["com_pose"][..., :3], x["com_pose"][..., 3:]
    w_body = m.quat_apply_inverse(com_quat, x["com_vel"][..., 3:])
    inertia = x["inertia"].view(*x["mass"].shape, 3, 3)
    kinetic = (0.5 * x["mass"] * (x["com_vel"][..., :3] ** 2).sum(-1)).sum(-1) + 0.5 * torch.einsum(
        "nbi,nbij,nbj->n", w_body, inertia, w_body
    )
    potential = (x["mass"] * 9.81 * com_pos[..., 2]).sum(-1)
    energy = kinetic + potential
    first = steps < 1
    delta = torch.where(first, 0.0, energy - x["energy_prev"])
    qd_prev = joints[(NOW - 1) % DEPTH, 1]
    work = torch.where(first, 0.0, (x["torque"] * 0.5 * (qd_prev + joints[NOW, 1])).sum(-1) * DT)
    stacked = [torch.stack(values) for values in (valid, *roots, dq, dqd)]
    return [*stacked, kinetic, potential, energy, delta, work]


def _time(fn, x, repeats: int) -> float:
    for _ in range(3):
        fn(x)
    start = time.perf_counter()
    for _ in range(repeats):
        fn(x)
    return (time.perf_counter() - start) / repeats


def run(args) -> list[dict]:
    x = _inputs(NUM_ENVS, args.device)
    # same labels, same values: the comparison is only meaningful if both compute the same thing
    for a, b in zip(warp_labels(x), torch_labels(x), strict=True):
        torch.testing.assert_close(a, b, atol=1e-3, rtol=1e-3)
    repeats = 20 if args.quick else 200
    # interleave the two measurements so machine noise hits both alike
    warp_t, torch_t = [], []
    for _ in range(5):
        warp_t.append(_time(warp_labels, x, repeats // 5))
        torch_t.append(_time(torch_labels, x, repeats // 5))
    w, t = min(warp_t), min(torch_t)
    common = {"num_envs": NUM_ENVS, "device": args.device}
    return [
        {"name": "labels_step_time/warp", "value": round(w * 1e3, 3), "unit": "ms", "target": None, **common},
        {"name": "labels_step_time/torch", "value": round(t * 1e3, 3), "unit": "ms", "target": None, **common},
        {
            "name": "ratio/labels_warp_speedup_vs_torch",
            "value": round(t / w, 2),
            "unit": "x",
            "target": TARGET,
            "pass": t / w >= TARGET,
            **common,
        },
    ]
