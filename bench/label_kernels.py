"""The Warp label kernels vs the same labels computed in torch (with Isaac Lab's own quaternion utilities), on the
same device, at 4096 envs, side by side in one run.

Labels timed (one "step" of labeling): root pose delta (world and local displacement, rotation vector) of 2 poses,
body-frame velocity deltas of 2 poses, joint position/velocity deltas of 12 joints (with wrapping), mechanical
energy of 13 bodies, actuator work of 12 joints. Target: Warp >= 3x faster on the CPU.
"""

from __future__ import annotations

import time

import torch

NUM_ENVS = 4096
TARGET = 3.0


def _inputs(n: int, device: str) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def quats(*shape):
        q = torch.randn(*shape, 4, generator=g)
        return (q / q.norm(dim=-1, keepdim=True)).to(device)

    def vecs(*shape):
        return torch.randn(*shape, generator=g).to(device)

    return {
        "pos0": vecs(n, 2, 3),
        "quat0": quats(n, 2),
        "pos1": vecs(n, 2, 3),
        "quat1": quats(n, 2),
        "v0": vecs(n, 2, 3),
        "w0": vecs(n, 2, 3),
        "v1": vecs(n, 2, 3),
        "w1": vecs(n, 2, 3),
        "q0": vecs(n, 12),
        "qd0": vecs(n, 12),
        "q1": vecs(n, 12),
        "qd1": vecs(n, 12),
        "wrap": torch.ones(12, dtype=torch.int32, device=device),
        "tau": vecs(n, 12),
        "com": vecs(n, 13, 3),
        "com_quat": quats(n, 13),
        "com_v": vecs(n, 13, 3),
        "com_w": vecs(n, 13, 3),
        "mass": vecs(n, 13).abs(),
        "inertia": torch.eye(3, device=device).repeat(n, 13, 1, 1).reshape(n, 13, 9),
        "energy_prev": vecs(n),
    }


def warp_labels(x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    from wam_isaac.labels import functional as F

    out = list(F.pose_delta(x["pos0"], x["quat0"], x["pos1"], x["quat1"]))
    out += F.body_velocity_delta(x["quat0"], x["v0"], x["w0"], x["quat1"], x["v1"], x["w1"])
    out += F.joint_delta(x["q0"], x["qd0"], x["q1"], x["qd1"], x["wrap"])
    energy = F.mechanical_energy(
        x["com"], x["com_quat"], x["com_v"], x["com_w"], x["mass"], x["inertia"], (0.0, 0.0, -9.81), x["energy_prev"]
    )
    out += list(energy.values())
    out.append(F.actuator_work(x["tau"], x["qd0"], x["qd1"], 0.02))
    return out


def torch_labels(x: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    import isaaclab.utils.math as m

    q0w, q1w = x["quat0"], x["quat1"]  # Isaac Lab 3.0's math utilities take xyzw, like Warp
    dpos = x["pos1"] - x["pos0"]
    dlocal = m.quat_apply_inverse(q0w, dpos)
    drot = m.axis_angle_from_quat(m.quat_unique(m.quat_mul(m.quat_inv(q0w), q1w)))
    dv = m.quat_apply_inverse(q1w, x["v1"]) - m.quat_apply_inverse(q0w, x["v0"])
    dw = m.quat_apply_inverse(q1w, x["w1"]) - m.quat_apply_inverse(q0w, x["w0"])
    dq = x["q1"] - x["q0"]
    dq = torch.where(x["wrap"].bool(), torch.atan2(torch.sin(dq), torch.cos(dq)), dq)
    dqd = x["qd1"] - x["qd0"]
    cq = x["com_quat"]
    w_body = m.quat_apply_inverse(cq, x["com_w"])
    inertia = x["inertia"].view(*x["mass"].shape, 3, 3)
    kinetic = (0.5 * x["mass"] * (x["com_v"] ** 2).sum(-1)).sum(-1) + 0.5 * torch.einsum(
        "nbi,nbij,nbj->n", w_body, inertia, w_body
    )
    potential = (x["mass"] * 9.81 * x["com"][..., 2]).sum(-1)
    energy = kinetic + potential
    work = (x["tau"] * 0.5 * (x["qd0"] + x["qd1"])).sum(-1) * 0.02
    return [dpos, dlocal, drot, dv, dw, dq, dqd, kinetic, potential, energy, energy - x["energy_prev"], work]


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
