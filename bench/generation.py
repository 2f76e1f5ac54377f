"""Labeled data generation: (a) throughput of labeled generation (labels + writing) vs bare ``env.step`` on the same
task and env count, measured side by side in one run (target >= 0.9); (c) peak resident memory of a process
generating 1M transitions (target < 2 GB).

Each measurement runs in a fresh process (Isaac Lab holds one simulation per process); peak RSS is the child's
``ru_maxrss``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

TASK = "WAM-Push-Cube"
"""The dataset task of the data issue (150-step episodes); both loops act with the same random policy."""
NUM_ENVS = 256
RATIO_TARGET = 0.9
RSS_TARGET_GB = 2.0

_CHILD = r"""
import json, sys, time, tempfile, torch
import gymnasium as gym
from isaaclab.app import launch_simulation
from isaaclab_tasks.utils import resolve_task_config
import wam_isaac_tasks
mode, task, device, out = sys.argv[1], sys.argv[2], sys.argv[5], sys.argv[6]
num_envs, steps = int(sys.argv[3]), int(sys.argv[4])
env_cfg, _ = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=["presets=newton_mjwarp"])
env_cfg.scene.num_envs = num_envs
env_cfg.sim.device = device
with launch_simulation(env_cfg, {"device": device}):
    env = gym.make(task, cfg=env_cfg).unwrapped
    env.reset()
    dim = env.action_manager.total_action_dim
    for _ in range(10):  # warm-up: Warp compiles kernels on first use
        env.step(2 * torch.rand(num_envs, dim, device=device) - 1)
    from wam_isaac.rollout.policies import make_policy
    policy = make_policy("random", env, task)
    if mode == "bare":
        obs = env.observation_manager.compute()
        start = time.perf_counter()
        for _ in range(steps):
            obs, *_ = env.step(policy(obs))
        elapsed = time.perf_counter() - start
        transitions = steps * num_envs
    else:
        from wam_isaac.data import DatasetWriter
        from wam_isaac.labels.labeler import labeler_cfg_for
        from wam_isaac.rollout.driver import RolloutDriver
        factory = lambda specs: DatasetWriter(out, task, "bench", specs, episodes_per_shard=200)
        stats = RolloutDriver(env, policy, factory, labeler_cfg_for(task)).run(steps)
        elapsed, transitions = stats.seconds, stats.transitions
    import resource
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB -> GB
    print("RESULT " + json.dumps({"per_s": transitions / elapsed, "transitions": transitions, "peak_gb": peak_gb}))
    env.close()
"""


def _child(mode: str, task: str, num_envs: int, steps: int, device: str) -> dict:
    """Run one measurement in a fresh process: its rate, transitions and peak RSS [GB]."""
    with tempfile.TemporaryDirectory() as out:
        result = subprocess.run(
            [sys.executable, "-c", _CHILD, mode, task, str(num_envs), str(steps), device, f"{out}/d"],
            capture_output=True,
            text=True,
            timeout=3600,
        )
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{mode} {task}: benchmark process failed: {' | '.join(tail)}")
    return json.loads(lines[-1][len("RESULT ") :])


def run(args) -> list[dict]:
    steps = 60 if args.quick else 400
    common = {"task": TASK, "num_envs": NUM_ENVS, "device": args.device}
    bare = _child("bare", TASK, NUM_ENVS, steps, args.device)
    labeled = _child("labeled", TASK, NUM_ENVS, steps, args.device)
    ratio = labeled["per_s"] / bare["per_s"]
    figures = [
        {
            "name": "transitions_per_s/bare_env_step",
            "value": round(bare["per_s"], 1),
            "unit": "transitions/s",
            "target": None,
            **common,
        },
        {
            "name": "transitions_per_s/labeled_generation",
            "value": round(labeled["per_s"], 1),
            "unit": "transitions/s",
            "target": None,
            **common,
        },
        {
            "name": "ratio/labeled_generation_vs_bare_step",
            "value": round(ratio, 3),
            "unit": "x",
            "target": RATIO_TARGET,
            "pass": ratio >= RATIO_TARGET,
            **common,
        },
    ]
    total = 100_000 if args.quick else 1_000_000
    envs = 1024
    memory = _child("labeled", TASK, envs, total // envs + 1, args.device)
    peak_gb = memory["peak_gb"]
    figures.append(
        {
            "name": "peak_rss/generate",
            "value": round(peak_gb, 3),
            "unit": "GB",
            "target": RSS_TARGET_GB,
            "pass": peak_gb < RSS_TARGET_GB,
            "transitions": memory["transitions"],
            "task": TASK,
            "num_envs": envs,
            "device": args.device,
        }
    )
    return figures
