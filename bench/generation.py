"""Labeled data generation: (a) throughput of labeled generation (labels + writing) vs bare ``env.step`` on the same
task and env count, measured side by side in one run (target >= 0.9); (c) peak resident memory of a process
generating 1M transitions (target < 2 GB).

Each measurement runs in a fresh process (Isaac Lab holds one simulation per process); peak RSS is the child's
``ru_maxrss`` (the dataset writer is a thread of that process). The ratio alternates the
two kinds of process in the balanced order :data:`ORDER` (four runs of each, so that a linear drift of the shared
machine's speed cancels and its run-to-run noise, up to +-9 % here, averages down) and divides the labeled rate by
the bare rate, each over all its runs; ``pair_ratios`` are the ratios of neighbouring runs, i.e. the spread. The
labeled time is the whole run: the stepping loop plus the final flush (the episodes still running at the end are
written and the dataset closed); the ratio of the loop alone is printed too, since the flush is a fixed cost per run
(about one episode per env) that a longer run amortizes.
"""

from __future__ import annotations

import tempfile

from wam_isaac.cli.bench import child_result

TASK = "WAM-Push-Cube"
"""The dataset task of the data issue (150-step episodes); both loops act with the same random policy."""
NUM_ENVS = 256
RATIO_TARGET = 0.9
ORDER = ("bare", "labeled", "labeled", "bare", "labeled", "bare", "bare", "labeled")
"""Order of the measurement processes: each kind's mean position is the same (4.5), so a linear drift of the shared
machine's speed cancels; ``--quick`` runs the first four (also balanced)."""
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
        transitions, flush = steps * num_envs, 0.0
    else:
        from wam_isaac.data import DatasetWriter
        from wam_isaac.labels.labeler import labeler_cfg_for
        from wam_isaac.rollout.driver import RolloutDriver
        def factory(specs):
            return DatasetWriter(out, task, "bench", specs, episodes_per_shard=200)
        stats = RolloutDriver(env, policy, factory, labeler_cfg_for(task)).run(steps)
        elapsed, transitions = stats.seconds, stats.transitions
        flush = stats.flush_seconds
    import resource
    # the writer is a thread of this process, so the process's own peak covers it
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # kB -> GB
    result = {"seconds": elapsed, "flush_seconds": flush, "transitions": transitions, "peak_gb": peak_gb}
    print("RESULT " + json.dumps(result))
    env.close()
"""


def _child(mode: str, task: str, num_envs: int, steps: int, device: str) -> dict:
    """Run one measurement in a fresh process: its wall time and final-flush time [s], transitions, peak RSS [GB]."""
    with tempfile.TemporaryDirectory() as out:
        return child_result(
            _CHILD, [mode, task, str(num_envs), str(steps), device, f"{out}/d"], f"{mode} {task}", timeout=3600
        )


def _rate(runs: list[dict], loop_only: bool = False) -> float:
    """Transitions per second over ``runs``; without the final flush if ``loop_only``."""
    seconds = sum(run["seconds"] - (run["flush_seconds"] if loop_only else 0.0) for run in runs)
    return sum(run["transitions"] for run in runs) / seconds


def run(args) -> list[dict]:
    steps = 60 if args.quick else 400
    common = {"task": TASK, "num_envs": NUM_ENVS, "steps": steps, "device": args.device}
    order = ORDER[:4] if args.quick else ORDER
    sequence = [(mode, _child(mode, TASK, NUM_ENVS, steps, args.device)) for mode in order]
    runs = {kind: [result for mode, result in sequence if mode == kind] for kind in ("bare", "labeled")}
    bare, labeled = _rate(runs["bare"]), _rate(runs["labeled"])
    ratio = labeled / bare
    # the ratio of each pair of neighbouring runs: how much the machine's noise moves one measurement
    pairs = [dict(sequence[i : i + 2]) for i in range(0, len(sequence), 2)]
    pair_ratios = [_rate([pair["labeled"]]) / _rate([pair["bare"]]) for pair in pairs]
    figures = [
        {
            "name": "transitions_per_s/bare_env_step",
            "value": round(bare, 1),
            "unit": "transitions/s",
            "target": None,
            "runs": [round(run["transitions"] / run["seconds"], 1) for run in runs["bare"]],
            **common,
        },
        {
            "name": "transitions_per_s/labeled_generation",
            "value": round(labeled, 1),
            "unit": "transitions/s",
            "target": None,
            "runs": [round(run["transitions"] / run["seconds"], 1) for run in runs["labeled"]],
            "flush_seconds": [round(run["flush_seconds"], 2) for run in runs["labeled"]],
            **common,
        },
        {
            "name": "ratio/labeled_generation_vs_bare_step",
            "value": round(ratio, 3),
            "unit": "x",
            "target": RATIO_TARGET,
            "pass": ratio >= RATIO_TARGET,
            "pair_ratios": [round(r, 3) for r in pair_ratios],
            **common,
        },
        {
            "name": "ratio/labeled_loop_without_final_flush_vs_bare_step",
            "value": round(_rate(runs["labeled"], loop_only=True) / bare, 3),
            "unit": "x",
            "target": None,
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
