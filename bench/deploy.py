"""Deploy runtime latency: one control step of ``policy.onnx`` through :class:`wam_isaac.deploy.Policy` (observation
assembly from named terms, dtype/shape/finiteness checks, onnxruntime, the action pipeline) vs torch eager running the
same network on a ready (1, obs_dim) tensor (target: runtime / torch <= 0.5).

The network is WAM-Quadruped-Flat's actor as its agent config builds it (48 observations -> [128, 128, 128] ELU -> 12
actions, observation normalizer, Gaussian mean), randomly initialized, exported by the exporter's own function; the
metadata reproduces the quadruped's policy layout (7 terms, two of them joint-indexed, the last action fed by the
runtime; 12 position targets = 0.25 * action + default pose, clamped to the joint limits). No simulator is started.

Both sides run single-threaded at batch 1, timed call by call, in alternating blocks (runtime, torch, torch,
runtime, ...) so that drift on a shared machine hits both; the figures are the median and p99 over all calls.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rsl_rl.models import MLPModel
from tensordict import TensorDict

RATIO_TARGET = 0.5
JOINTS = [f"{leg}_{part}_joint" for leg in ("FL", "FR", "RL", "RR") for part in ("hip", "thigh", "calf")]
DEFAULT_POSE = [0.05, 0.6, -1.2, -0.05, 0.6, -1.2, 0.05, 0.8, -1.2, -0.05, 0.8, -1.2]
TERMS = [("base_lin_vel", 3, None), ("base_ang_vel", 3, None), ("projected_gravity", 3, None),
         ("velocity_commands", 3, None), ("joint_pos", 12, JOINTS), ("joint_vel", 12, JOINTS)]  # fmt: skip


def quadruped_actor() -> MLPModel:
    from wam_isaac_tasks.quadruped.agents.rsl_rl_ppo_cfg import QuadrupedFlatPPORunnerCfg

    cfg = QuadrupedFlatPPORunnerCfg().actor
    obs = TensorDict({"policy": torch.zeros(1, 48)}, batch_size=[1])
    distribution = {"class_name": "GaussianDistribution", "init_std": 1.0}
    actor = MLPModel(obs, {"actor": ["policy"]}, "actor", 12, list(cfg.hidden_dims), cfg.activation,
                     cfg.obs_normalization, distribution)  # fmt: skip
    actor.obs_normalizer._std.uniform_(0.5, 2.0)
    return actor.eval()


def write_export(directory: Path, actor: MLPModel) -> None:
    from wam_isaac.export import write_metadata
    from wam_isaac.export.onnx_policy import export_policy_onnx

    terms, start = [], 0
    for name, size, joints in [*TERMS, ("actions", 12, JOINTS)]:
        source = "last_action" if name == "actions" else "robot"
        terms.append({"name": name, "slice": [start, start + size], "shape": [size], "history_length": 0,
                      "clip": None, "scale": None, "joint_names": joints, "source": source})  # fmt: skip
        start += size
    metadata = {
        "schema": "wam_isaac.export",
        "schema_version": 1,
        "task": "WAM-Quadruped-Flat (bench: random weights)",
        "policy": export_policy_onnx(actor, directory / "policy.onnx"),
        "observation": {"groups": ["policy"], "size": start, "history_order": "term", "terms": terms},
        "action": {
            "dim": 12,
            "pipeline": "runtime",
            "clip_actions": None,
            "joint_names": JOINTS,
            "terms": [
                {
                    "name": "joint_pos",
                    "kind": "joint_position",
                    "slice": [0, 12],
                    "joint_names": JOINTS,
                    "scale": [0.25] * 12,
                    "offset": DEFAULT_POSE,
                    "clip": None,
                }
            ],
            "limits": {"lower": [-2.7] * 12, "upper": [4.2] * 12},
        },  # fmt: skip
        "control": {"physics_dt": 0.005, "decimation": 4, "control_period": 0.02},
        "robot": {"joint_names": JOINTS},
        "world_model": None,
    }
    write_metadata(directory, metadata)


def _time_calls(function, calls: int) -> list[float]:
    times = []
    for _ in range(calls):
        start = time.perf_counter_ns()
        function()
        times.append((time.perf_counter_ns() - start) * 1e-3)
    return times


def run(args) -> list[dict]:
    from wam_isaac.deploy import Policy

    blocks, calls = (4, 200) if args.quick else (10, 1000)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    try:
        actor = quadruped_actor()
        with tempfile.TemporaryDirectory() as temp:
            write_export(Path(temp), actor)
            policy = Policy.load(temp)
        terms = {name: rng.normal(size=size) for name, size, _ in TERMS}
        obs = TensorDict({"policy": torch.randn(1, 48)}, batch_size=[1])

        def runtime_step():
            policy.step(terms)

        def torch_step():
            with torch.inference_mode():
                actor(obs)

        for function in (runtime_step, torch_step):  # warm-up
            _time_calls(function, calls // 4)
        runtime_us, torch_us = [], []
        for block in range(blocks):
            pair = [(runtime_us, runtime_step), (torch_us, torch_step)]
            for times, function in pair if block % 2 == 0 else pair[::-1]:
                times.extend(_time_calls(function, calls))
        # the figures compare the same computation: the runtime's last action is torch's on the same input
        with torch.inference_mode():
            expected = actor(TensorDict({"policy": torch.from_numpy(policy.observation.buffer.copy())}, [1]))
        max_abs_diff = float(np.abs(policy._raw - expected.numpy()).max())
    finally:
        torch.set_num_threads(threads)
    runtime_median, torch_median = statistics.median(runtime_us), statistics.median(torch_us)
    ratio = runtime_median / torch_median
    common = {"network": "WAM-Quadruped-Flat actor 48-[128,128,128]-12", "calls": blocks * calls, "threads": 1}
    print(f"[bench] deploy step {runtime_median:.1f} us vs torch eager {torch_median:.1f} us: {ratio:.3f}x",
          file=sys.stderr)  # fmt: skip
    return [
        {"name": "latency/deploy_runtime_step_median", "value": round(runtime_median, 2), "unit": "us",
         "target": None, **common},
        {"name": "latency/deploy_runtime_step_p99", "value": round(float(np.percentile(runtime_us, 99)), 2),
         "unit": "us", "target": None, **common},
        {"name": "latency/torch_eager_median", "value": round(torch_median, 2), "unit": "us", "target": None,
         **common},
        {"name": "latency/torch_eager_p99", "value": round(float(np.percentile(torch_us, 99)), 2), "unit": "us",
         "target": None, **common},
        {"name": "ratio/deploy_runtime_vs_torch_eager", "value": round(ratio, 3), "unit": "x",
         "target": RATIO_TARGET, "pass": ratio <= RATIO_TARGET and max_abs_diff <= 1e-5,
         "max_abs_diff_vs_torch": max_abs_diff, **common},
    ]  # fmt: skip
