"""Env-steps/s of each WAM task at 256 envs, and of Isaac Lab's own Isaac-Cartpole-Direct on this project's
cart-pole asset, side by side in one run.

Each task runs in its own process (Isaac Lab holds one simulation per process): build the env, warm up (Warp
compiles its kernels on first use), then time ``steps`` env steps under uniform random actions. The figure that
matters is the ratio WAM-Cartpole / Isaac-Cartpole-Direct: the cost of the managers, domain randomization and the
action pipeline over a bare direct env on the same physics.
"""

from __future__ import annotations

from wam_isaac.cli.bench import child_result

TASKS = ("WAM-Cartpole", "WAM-Push-Cube", "WAM-Quadruped-Flat")
REFERENCE = "Isaac-Cartpole-Direct"
NUM_ENVS = 256
RATIO_TARGET = 0.5
"""WAM-Cartpole (manager-based, DR, latency, noise, privileged critic) should keep at least half the bare direct
env's speed."""

_CHILD = r"""
import json, sys, time, torch
import gymnasium as gym
from isaaclab.app import launch_simulation
from isaaclab_tasks.utils import resolve_task_config
import isaaclab_tasks, wam_isaac_tasks
from wam_isaac_assets import usd_path
task, num_envs, steps, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
env_cfg, _ = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=["presets=newton_mjwarp"])
env_cfg.scene.num_envs = num_envs
env_cfg.sim.device = device
if task == "Isaac-Cartpole-Direct":  # Isaac Lab's stock asset is on an unreachable server: use ours
    env_cfg.scene.cartpole.spawn.usd_path = usd_path("cartpole")
    env_cfg.scene.ground = None
with launch_simulation(env_cfg, {"device": device}):
    env = gym.make(task, cfg=env_cfg).unwrapped
    env.reset()
    dim = sum(env.single_action_space.shape) if hasattr(env, "single_action_space") else env.action_space.shape[-1]
    actions = lambda: 2 * torch.rand(num_envs, dim, device=device) - 1
    for _ in range(20):
        env.step(actions())
    start = time.perf_counter()
    for _ in range(steps):
        env.step(actions())
    elapsed = time.perf_counter() - start
    print("RESULT " + json.dumps({"steps_per_s": steps * num_envs / elapsed}), flush=True)
    env.close()
"""


def measure(task: str, num_envs: int, steps: int, device: str) -> float:
    """Env-steps/s of ``task`` measured in a fresh process."""
    return child_result(_CHILD, [task, str(num_envs), str(steps), device], task)["steps_per_s"]


def run(args) -> list[dict]:
    steps = 50 if args.quick else 300
    figures = []
    rates = {}
    for task in (REFERENCE, *TASKS):
        rates[task] = measure(task, NUM_ENVS, steps, args.device)
        figures.append(
            {
                "name": f"env_steps_per_s/{task}",
                "value": round(rates[task], 1),
                "unit": "env-steps/s",
                "target": None,
                "num_envs": NUM_ENVS,
                "device": args.device,
                "steps": steps,
            }
        )
    figures.append(
        {
            "name": f"ratio/WAM-Cartpole_vs_{REFERENCE}",
            "value": round(rates["WAM-Cartpole"] / rates[REFERENCE], 3),
            "unit": "x",
            "target": RATIO_TARGET,
            "num_envs": NUM_ENVS,
            "device": args.device,
            "pass": rates["WAM-Cartpole"] / rates[REFERENCE] >= RATIO_TARGET,
        }
    )
    return figures
