"""Sample efficiency: environment steps to reach a fixed success threshold, plain PPO vs joint-WAM PPO (from scratch,
with imagination, and fine-tuned from a pretrained joint WAM with the pretraining data's env steps counted), printed
as ratios to PPO's env steps; learning curves as a PNG.

Every run is a ``wam train`` subprocess (Isaac Lab's rsl-rl training path) in a scratch directory, selected by the
agent entry point (``rsl_rl_cfg_entry_point``, ``rsl_rl_wam_cfg_entry_point``,
``rsl_rl_wam_imagination_cfg_entry_point``); the curves are the runs' own TensorBoard ``Metrics/success_rate``
scalars (logged at each reset by the tasks' success terms), against env steps = iteration x num_envs x
``num_steps_per_env``. A run reaches the threshold at the first iteration where the mean success rate over the last
:data:`SMOOTHING` iterations is at or above it; a run that never does counts as not reached (``null``), and a
variant's figure is the median over its seeds (``null`` if most seeds did not reach it).

The pretrained variant pretrains a joint WAM once per task by DAgger on the task's scripted expert (``wam dagger``, MLP
trunk: behaviour cloning of a noisy expert's dataset alone left the WAM far from the expert, see the README's "Joint
WAM in rsl-rl PPO"), then fine-tunes its last round per seed; its env steps include every DAgger round's transitions.

Sizes (:data:`SETTINGS`) are chosen so that the whole benchmark takes about an hour on a 2-core CPU; on a GPU, run
``wam bench sample_efficiency --device cuda:0`` after raising ``num_envs`` and ``max_iterations`` (the same script).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SMOOTHING = 5
"""Iterations averaged before comparing the success rate with the threshold."""

AGENTS = {
    "ppo": "rsl_rl_cfg_entry_point",
    "wam": "rsl_rl_wam_cfg_entry_point",
    "wam_imagination": "rsl_rl_wam_imagination_cfg_entry_point",
    "wam_pretrained": "rsl_rl_wam_cfg_entry_point",
}
"""Variant -> agent entry point; ``wam_pretrained`` also sets ``agent.algorithm.pretrained_checkpoint``."""


@dataclass(frozen=True)
class TaskSetting:
    """The budget of one task's runs."""

    task: str
    threshold: float
    """Success rate to reach."""
    num_envs: int
    max_iterations: int
    seeds: tuple[int, ...]
    dataset_envs: int = 64
    """Envs of the DAgger pretraining (round 0: the scripted expert with noise 0.1)."""
    dataset_steps: int = 150
    """Steps per env of each DAgger round."""
    pretrain_epochs: int = 25
    """Epochs of DAgger's round 0 (later rounds: ``wam dagger``'s default)."""
    dagger_rounds: int = 5
    """DAgger rounds after round 0."""


SETTINGS = (
    TaskSetting("WAM-Cartpole", threshold=0.9, num_envs=256, max_iterations=60, seeds=(1, 2, 3), dataset_steps=200),
    TaskSetting("WAM-Push-Cube", threshold=0.3, num_envs=256, max_iterations=40, seeds=(1, 2, 3)),
)
TASKS_ENV = "WAM_SAMPLE_EFFICIENCY_TASKS"
"""Environment variable: comma-separated task ids to run (default: every task of :data:`SETTINGS`)."""
QUICK = (
    TaskSetting(
        "WAM-Cartpole", threshold=0.9, num_envs=64, max_iterations=8, seeds=(1,), dataset_steps=50, dagger_rounds=1
    ),
)


def _wam(args: list[str], cwd: Path) -> None:
    """Run ``wam <args>`` in ``cwd``; raise with its last output lines if it fails."""
    result = subprocess.run([sys.executable, "-m", "wam_isaac", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"wam {' '.join(args)} failed ({result.returncode}):\n{tail}")


def _curve(run_dir: Path, num_envs: int) -> tuple[list[int], list[float]]:
    """(env steps, success rate) at each logged iteration of a run."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from wam_isaac.export.run_dir import load_params_yaml  # Isaac Lab writes python tuples (!!python/tuple)

    agent = load_params_yaml((run_dir / "params" / "agent.yaml").read_text())
    per_iteration = num_envs * int(agent["num_steps_per_env"])
    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    scalars = events.Scalars("Metrics/success_rate") if "Metrics/success_rate" in events.Tags()["scalars"] else []
    return [(s.step + 1) * per_iteration for s in scalars], [float(s.value) for s in scalars]


def steps_to_threshold(steps: list[int], success: list[float], threshold: float, offset: int = 0) -> int | None:
    """Env steps (plus ``offset``) at the first point where the mean of the last :data:`SMOOTHING` success rates
    reaches ``threshold``; ``None`` if it never does."""
    for index in range(len(success)):
        window = success[max(0, index - SMOOTHING + 1) : index + 1]
        if len(window) == SMOOTHING and sum(window) / SMOOTHING >= threshold:
            return steps[index] + offset
    return None


def _median_or_none(values: list[int | None]) -> float | None:
    """The median of the reached values if most runs reached the threshold, else ``None``."""
    reached = [v for v in values if v is not None]
    return float(statistics.median(reached)) if len(reached) * 2 > len(values) else None


def _pretrain(setting: TaskSetting, device: str, work: Path) -> tuple[Path, int]:
    """A joint WAM pretrained by DAgger on the task's scripted expert; returns its last round's checkpoint and the
    transitions of every round (the env steps the pretraining cost)."""
    out = work / "pretrain_dagger"
    _wam(
        ["dagger", "--task", setting.task, "--out", str(out), "--num_envs", str(setting.dataset_envs),
         "--steps", str(setting.dataset_steps), "--rounds", str(setting.dagger_rounds),
         "--epochs", str(setting.pretrain_epochs), "--eval_episodes", str(setting.dataset_envs),
         "--device", device, "model.trunk.kind=mlp"],
        work,
    )  # fmt: skip
    summary = json.loads((out / "dagger.json").read_text())
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    return work / summary["rounds"][-1]["checkpoint"], int(manifest["totals"]["transitions"])


def _train(setting: TaskSetting, variant: str, seed: int, device: str, work: Path, pretrained: Path | None) -> Path:
    """One ``wam train`` run in its own directory; returns its run directory."""
    cwd = work / f"{variant}_seed{seed}"
    cwd.mkdir(parents=True)
    args = ["train", "--task", setting.task, "--agent", AGENTS[variant], "--num_envs", str(setting.num_envs),
            "--max_iterations", str(setting.max_iterations), "--seed", str(seed), "--device", device]  # fmt: skip
    if pretrained is not None:
        args.append(f"agent.algorithm.pretrained_checkpoint={pretrained}")
    _wam(args, cwd)
    return next(p.parent for p in (cwd / "logs").rglob("events.out.tfevents.*"))


def _plot(curves: dict, path: Path) -> None:
    """Success rate against env steps, one panel per task, the mean over seeds per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = sorted({task for task, _ in curves})
    figure, axes = plt.subplots(1, len(tasks), figsize=(6 * len(tasks), 4), squeeze=False)
    for axis, task in zip(axes[0], tasks, strict=True):
        for (curve_task, variant), runs in sorted(curves.items()):
            if curve_task != task or not runs:
                continue
            length = min(len(s) for s, _ in runs)
            if length == 0:
                continue
            steps = runs[0][0][:length]
            mean = [statistics.fmean(r[1][i] for r in runs) for i in range(length)]
            axis.plot(steps, mean, label=f"{variant} ({len(runs)} seeds)")
        axis.set_title(task)
        axis.set_xlabel("env steps (pretraining data included)")
        axis.set_ylabel("success rate")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def run(args) -> list[dict]:
    """Every task's variants x seeds; one figure per task and variant (median env steps, ratio to PPO)."""
    settings = QUICK if args.quick else SETTINGS
    if os.environ.get(TASKS_ENV):
        wanted = os.environ[TASKS_ENV].split(",")
        unknown = sorted(set(wanted) - {s.task for s in settings})
        if unknown:
            raise ValueError(f"{TASKS_ENV} names {unknown}; expected some of {[s.task for s in settings]}")
        settings = tuple(s for s in settings if s.task in wanted)
    out_dir = Path("logs", "bench")
    out_dir.mkdir(parents=True, exist_ok=True)
    figures, curves = [], {}
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="wam_sample_eff_") as scratch:
        for setting in settings:
            work = Path(scratch) / setting.task
            work.mkdir()
            pretrained, offset = _pretrain(setting, args.device, work)
            results = {}
            for variant in AGENTS:
                reached = []
                for seed in setting.seeds:
                    run_started = time.perf_counter()
                    run_dir = _train(
                        setting, variant, seed, args.device, work, pretrained if variant == "wam_pretrained" else None
                    )
                    steps, success = _curve(run_dir, setting.num_envs)
                    extra = offset if variant == "wam_pretrained" else 0
                    curves.setdefault((setting.task, variant), []).append(([s + extra for s in steps], success))
                    reached.append(steps_to_threshold(steps, success, setting.threshold, extra))
                    print(
                        f"[sample_efficiency] {setting.task} {variant} seed {seed}: threshold at {reached[-1]}"
                        f" env steps, final success {success[-1] if success else None},"
                        f" {time.perf_counter() - run_started:.0f} s",
                        file=sys.stderr,
                        flush=True,
                    )
                results[variant] = (_median_or_none(reached), reached)
            baseline = results["ppo"][0]
            for variant, (median, reached) in results.items():
                ratio = median / baseline if median is not None and baseline else None
                figures.append(
                    {
                        "name": f"sample_efficiency/{setting.task}/{variant}",
                        "value": ratio,
                        "unit": "x PPO env steps",
                        "target": "<= 0.5 (wam, WAM-Push-Cube)" if variant != "ppo" else None,
                        "median_env_steps": median,
                        "env_steps_per_seed": reached,
                        "threshold": setting.threshold,
                        "num_envs": setting.num_envs,
                        "max_iterations": setting.max_iterations,
                        "pretraining_env_steps": offset if variant == "wam_pretrained" else 0,
                    }
                )
    plot = out_dir / "sample_efficiency.png"
    _plot(curves, plot)
    raw = [{"task": task, "variant": variant, "runs": runs} for (task, variant), runs in curves.items()]
    (out_dir / "sample_efficiency_curves.json").write_text(json.dumps(raw))
    figures.append(
        {"name": "sample_efficiency/wall_time", "value": time.perf_counter() - started, "unit": "s", "plot": str(plot)}
    )
    return figures
