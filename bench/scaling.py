"""Scale-out: throughput of 2 processes vs 1, for labeled generation and for ``wam train-model``.

- ``ratio/generation_2_procs_vs_1``: aggregate transitions/s of 2 generator processes (the ranks of ``wam generate
  --num_procs 2``: each its own envs, labels and writer thread) over one process, same task and envs per process
  (target >= 1.7 on 2 idle cores: one Isaac Lab process keeps about one core busy, Warp's CPU kernels being
  single-threaded). Each process builds its env and warms up, then all start their stepping loop together (a
  barrier on files); the aggregate rate is all transitions over the span from the first start to the last end.
- ``ratio/train_model_2_ranks_vs_1``: training windows/s of ``torchrun --nproc_per_node=2 -m wam_isaac train-model``
  over one rank, same global batch, on the dataset the 1-process generation run wrote (windows every 8 steps; the
  second epoch's rate, which the trainer prints; every rank one torch thread).

The runs alternate (1, 2, 2, 1 processes; ``--quick``: 1, 2) so that a linear drift of a shared machine cancels. The
machine's load average is printed with the figures: other work on the cores depresses the ratios.

On a cluster: ``wam bench scaling --device cuda`` on a node with 2 GPUs measures the same ratios with rank ``r`` on
``cuda:r`` (generation: ``NUM_ENVS`` per GPU is small for a GPU; raise it, e.g. ``SCALING_NUM_ENVS=4096``, and the
train batch with ``SCALING_BATCH=4096``); across nodes, run ``scripts/slurm/train_model_multinode.sh`` with 1 and with
N nodes and compare the windows/s it prints.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "WAM-Cartpole"
NUM_ENVS = int(os.environ.get("SCALING_NUM_ENVS", 256))
"""Envs per generator process."""
BATCH = int(os.environ.get("SCALING_BATCH", 256))
"""Global batch of the training runs [windows]."""
GENERATION_TARGET = 1.7

_CHILD = r"""
import json, os, sys, time, torch
import gymnasium as gym
from isaaclab.app import launch_simulation
from isaaclab_tasks.utils import resolve_task_config
import wam_isaac_tasks
task, device, out, barrier = sys.argv[1], sys.argv[4], sys.argv[5], sys.argv[6]
num_envs, steps, procs, rank = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[7]), int(sys.argv[8])
presets = [] if torch.cuda.is_available() else ["presets=newton_mjwarp"]
env_cfg, _ = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=presets)
env_cfg.scene.num_envs, env_cfg.sim.device, env_cfg.seed = num_envs, device, rank
with launch_simulation(env_cfg, {"device": device}):
    env = gym.make(task, cfg=env_cfg).unwrapped
    from wam_isaac.data import DatasetWriter
    from wam_isaac.labels.labeler import labeler_cfg_for
    from wam_isaac.rollout.driver import RolloutDriver
    from wam_isaac.rollout.policies import make_policy
    policy = make_policy("scripted", env, task, noise_std=0.2)
    env.reset()
    for _ in range(10):  # warm-up: Warp compiles kernels on first use
        env.step(policy(env.observation_manager.compute()))
    open(f"{barrier}/ready_{rank}", "w").close()
    while len([n for n in os.listdir(barrier) if n.startswith("ready_")]) < procs:
        time.sleep(0.01)
    def factory(specs):
        return DatasetWriter(out, task, "bench", specs)
    start = time.time()
    stats = RolloutDriver(env, policy, factory, labeler_cfg_for(task), seed=rank).run(steps)
    print("RESULT " + json.dumps({"start": start, "end": time.time(), "transitions": stats.transitions}))
    env.close()
"""


def _generation(procs: int, steps: int, device: str, out: Path) -> dict:
    """``procs`` generator processes started together; their aggregate transitions/s."""
    with tempfile.TemporaryDirectory() as barrier:
        children = []
        for rank in range(procs):
            rank_device = f"cuda:{rank}" if device.startswith("cuda") else device
            command = [sys.executable, "-c", _CHILD, TASK, str(NUM_ENVS), str(steps), rank_device,
                       str(out / f"rank_{rank}"), barrier, str(procs), str(rank)]  # fmt: skip
            env = {**os.environ, "OMP_NUM_THREADS": "1"}
            children.append(
                subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
            )
        results = []
        for child in children:
            stdout, stderr = child.communicate(timeout=3600)
            lines = [line for line in stdout.splitlines() if line.startswith("RESULT ")]
            if child.returncode != 0 or not lines:
                raise RuntimeError(f"generator process failed: {' | '.join(stderr.strip().splitlines()[-3:])}")
            results.append(json.loads(lines[-1][len("RESULT ") :]))
    span = max(r["end"] for r in results) - min(r["start"] for r in results)
    return {
        "rate": sum(r["transitions"] for r in results) / span,
        "rates": [r["transitions"] / (r["end"] - r["start"]) for r in results],
    }


def _training(ranks: int, data: Path, device: str, quick: bool) -> float:
    """Training windows/s of ``ranks`` ranks (torchrun), global batch :data:`BATCH`, in the last epoch."""
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={ranks}",
                   "-m", "wam_isaac", "train-model", "--data", str(data), "--model", "gru", "--history", "8",
                   "--forecast", "16", "--epochs", "2", "--out", f"{out}/run", "--device", device,
                   f"train.batch_size={BATCH}", "train.save_every=100", "train.val_windows=64", "train.stride=8",
                   f"model.trunk.hidden={64 if quick else 128}"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        result = subprocess.run(command, capture_output=True, text=True, timeout=3600, env=env)
    rates = re.findall(r"\((\d+) windows/s\)", result.stdout)
    if result.returncode != 0 or not rates:
        raise RuntimeError(
            f"train-model on {ranks} ranks failed: {' | '.join(result.stderr.strip().splitlines()[-3:])}"
        )
    return float(rates[-1])


def run(args) -> list[dict]:
    steps = 100 if args.quick else 400
    order = (1, 2) if args.quick else (1, 2, 2, 1)
    load_before = os.getloadavg()
    generation: dict[int, list[dict]] = {1: [], 2: []}
    training: dict[int, list[float]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as scratch:
        data = None
        for index, procs in enumerate(order):
            out = Path(scratch) / f"gen_{index}"
            generation[procs].append(_generation(procs, steps, args.device, out))
            if data is None and procs == 1:
                data = out / "rank_0"
        time.sleep(1.0)
        for procs in order:
            training[procs].append(_training(procs, data, args.device, args.quick))
    load_after = os.getloadavg()
    gen = {p: sum(r["rate"] for r in runs) / len(runs) for p, runs in generation.items()}
    train = {p: sum(runs) / len(runs) for p, runs in training.items()}
    load = [round(load_before[0], 2), round(load_after[0], 2)]
    common = {"task": TASK, "device": args.device, "load_average_1min": load, "cpus": os.cpu_count()}
    ratio = gen[2] / gen[1]
    return [
        {"name": "transitions_per_s/generation_1_proc", "value": round(gen[1], 1), "unit": "transitions/s",
         "target": None, "runs": [round(r["rate"], 1) for r in generation[1]], "num_envs": NUM_ENVS, "steps": steps,
         **common},
        {"name": "transitions_per_s/generation_2_procs", "value": round(gen[2], 1), "unit": "transitions/s",
         "target": None, "runs": [round(r["rate"], 1) for r in generation[2]],
         "per_process": [[round(x, 1) for x in r["rates"]] for r in generation[2]], "num_envs": NUM_ENVS,
         "steps": steps, **common},
        {"name": "ratio/generation_2_procs_vs_1", "value": round(ratio, 3), "unit": "x", "target": GENERATION_TARGET,
         "pass": ratio >= GENERATION_TARGET, **common},
        {"name": "windows_per_s/train_model_1_rank", "value": round(train[1], 1), "unit": "windows/s", "target": None,
         "runs": training[1], "batch_size": BATCH, **common},
        {"name": "windows_per_s/train_model_2_ranks", "value": round(train[2], 1), "unit": "windows/s",
         "target": None, "runs": training[2], "batch_size": BATCH, **common},
        {"name": "ratio/train_model_2_ranks_vs_1", "value": round(train[2] / train[1], 3), "unit": "x", "target": None,
         "batch_size": BATCH, **common},
    ]  # fmt: skip
