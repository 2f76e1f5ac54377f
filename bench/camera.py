"""Camera cost: env-steps/s of WAM-Push-Cube-Camera (64x64 RGB, Newton's Warp ray tracer) vs WAM-Push-Cube (the
same physics, no camera) at equal envs, side by side in one run; and the pixel world model's training throughput
[frames/s] at its default size (64x64 frames, windows of history 4 + forecast 8, batch 8).

Each task runs in its own process (Isaac Lab holds one simulation per process), alternating camera / no camera for
``ROUNDS`` rounds so that a change of load on a shared machine hits both: build the env, warm up (Warp compiles its
kernels on first use), then time ``steps`` env steps under uniform random actions, reading the camera group each
step (what a rollout does). Rates are reported per second of wall time and per second of the process's CPU time (far
less disturbed by other jobs); the ratio is camera / no camera of the CPU-time rates, the median over rounds.

Visual domain randomization costs at resets only (colours and camera poses written per reset env), so its figure is
measured on the camera task with episodes cut to 10 steps (every env resets every 10 steps, the worst case), with and
without the ``visual_randomization`` event, alternating in the same rounds: ratio on / off of the CPU-time rates.
"""

from __future__ import annotations

import statistics

from wam_isaac.cli.bench import child_result

TASKS = ("WAM-Push-Cube", "WAM-Push-Cube-Camera")
NUM_ENVS = 16
ROUNDS = 2
SHORT_EPISODE_S = 0.4
"""Episode length of the visual DR comparison [s]: 10 control steps."""
VISUAL_DR = {"visual_dr_on": "on", "visual_dr_off": "off"}
"""The visual DR comparison's runs of WAM-Push-Cube-Camera: event kept / removed."""

_CHILD = r"""
import json, sys, time, torch
import gymnasium as gym
from isaaclab.app import launch_simulation
from isaaclab_tasks.utils import resolve_task_config
import wam_isaac_tasks
task, num_envs, steps, device = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
visual_dr, episode_length_s = sys.argv[5], float(sys.argv[6])
overrides = [] if torch.cuda.is_available() else ["presets=newton_mjwarp"]
env_cfg, _ = resolve_task_config(task, "rsl_rl_cfg_entry_point", overrides=overrides)
env_cfg.scene.num_envs = num_envs
env_cfg.sim.device = device
if visual_dr == "off":
    env_cfg.events.visual_randomization = None
if episode_length_s > 0:
    env_cfg.episode_length_s = episode_length_s
with launch_simulation(env_cfg, {"device": device}):
    env = gym.make(task, cfg=env_cfg).unwrapped
    env.reset()
    actions = lambda: 2 * torch.rand(num_envs, env.action_manager.total_action_dim, device=device) - 1
    for _ in range(10):
        obs, *_ = env.step(actions())
    start, cpu_start = time.perf_counter(), time.process_time()
    for _ in range(steps):
        obs, *_ = env.step(actions())
        frames = obs.get("camera")
    if frames is not None:
        frames.sum().item()  # wait for the device
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print("RESULT " + json.dumps({"wall": steps * num_envs / wall, "cpu": steps * num_envs / cpu}), flush=True)
    env.close()
"""


def measure(
    task: str, num_envs: int, steps: int, device: str, visual_dr: str = "on", episode_length_s: float = 0.0
) -> dict[str, float]:
    """Env-steps per second of wall time (``wall``) and of process CPU time (``cpu``) of ``task``, in a fresh
    process; ``visual_dr="off"`` removes the camera task's visual randomization event, ``episode_length_s > 0``
    shortens the episodes."""
    args = [task, str(num_envs), str(steps), device, visual_dr, str(episode_length_s)]
    return child_result(_CHILD, args, f"{task} (visual DR {visual_dr})")


def run(args) -> list[dict]:
    steps = 10 if args.quick else 60
    rounds = 1 if args.quick else ROUNDS
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in (*TASKS, *VISUAL_DR)}
    for _ in range(rounds):
        for task in TASKS:
            rates[task].append(measure(task, NUM_ENVS, steps, args.device))
        for name, visual_dr in VISUAL_DR.items():
            rates[name].append(measure(TASKS[1], NUM_ENVS, steps, args.device, visual_dr, SHORT_EPISODE_S))
    common = {"num_envs": NUM_ENVS, "device": args.device, "steps": steps, "rounds": rounds}
    figures = []
    for task in TASKS:
        for clock, unit in (("wall", "env-steps/s"), ("cpu", "env-steps/CPU-s")):
            value = statistics.median(rate[clock] for rate in rates[task])
            figures.append({"name": f"{clock}_env_steps/{task}", "value": round(value, 1), "unit": unit, "target": None,
                            **common})  # fmt: skip
    ratios = [camera["cpu"] / plain["cpu"] for camera, plain in zip(rates[TASKS[1]], rates[TASKS[0]], strict=True)]
    figures.append({"name": "ratio/camera_vs_no_camera", "value": round(statistics.median(ratios), 3), "unit": "x",
                    "target": None, "per_round": [round(r, 3) for r in ratios], **common})  # fmt: skip
    for name in VISUAL_DR:
        value = statistics.median(rate["cpu"] for rate in rates[name])
        figures.append({"name": f"cpu_env_steps/{TASKS[1]}/{name}", "value": round(value, 1),
                        "unit": "env-steps/CPU-s", "target": None, "episode_length_s": SHORT_EPISODE_S,
                        **common})  # fmt: skip
    ratios = [on["cpu"] / off["cpu"] for on, off in zip(*(rates[name] for name in VISUAL_DR), strict=True)]
    figures.append({"name": "ratio/visual_dr_on_vs_off", "value": round(statistics.median(ratios), 3), "unit": "x",
                    "target": None, "per_round": [round(r, 3) for r in ratios], "episode_length_s": SHORT_EPISODE_S,
                    **common})  # fmt: skip
    figures.append(pixel_training_throughput(args.device, updates=3 if args.quick else 20))
    return figures


def pixel_training_throughput(device: str, updates: int, batch: int = 8, history: int = 4, forecast: int = 8) -> dict:
    """Frames per second of :meth:`PixelWorldModel.loss` + backward + Adam on random uint8 frames (every frame of a
    window is encoded and decoded; the forecast ones are also predicted), after two warm-up updates."""
    import time

    import torch

    from wam_isaac.models.pixel_world_model import PixelWorldModel, PixelWorldModelCfg

    cfg = PixelWorldModelCfg()
    model = PixelWorldModel(cfg, action_dim=3).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    length = history + forecast
    frames = torch.randint(0, 256, (batch, length, cfg.image_size, cfg.image_size, 3), dtype=torch.uint8, device=device)
    actions = torch.randn(batch, length, 3, device=device)
    for update in range(updates + 2):
        if update == 2:
            start = time.perf_counter()
        loss = model.loss(frames, actions, history)["total"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    loss.item()  # wait for the device
    rate = updates * batch * length / (time.perf_counter() - start)
    return {"name": "pixel_world_model/train_frames_per_s", "value": round(rate, 1), "unit": "frames/s",
            "target": None, "device": device, "batch": batch, "window": length, "updates": updates}  # fmt: skip
