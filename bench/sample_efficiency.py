"""Sample efficiency: environment steps to reach a fixed success threshold, plain PPO vs joint-WAM PPO (from scratch,
with imagination, and fine-tuned from a pretrained joint WAM with the pretraining data's env steps counted), printed
as ratios to PPO's env steps; learning curves as a PNG.

Every run is a ``wam train`` subprocess (Isaac Lab's rsl-rl training path) in its own directory under
``logs/bench/sample_efficiency_runs/<time>/<task>/`` (TensorBoard events and checkpoints kept), selected by the agent
entry point (``rsl_rl_cfg_entry_point``, ``rsl_rl_wam_cfg_entry_point``, ``rsl_rl_wam_imagination_cfg_entry_point``).
Its curve is read live from rsl-rl's console log: ``Metrics/success_rate`` (the tasks' success term, the same signal
for every variant) against ``Total steps``. A run reaches the threshold at the first iteration where the mean
success rate over the last :data:`SMOOTHING` iterations is at or above it, and is then stopped (SIGTERM: ``wam
train`` checkpoints and exits 0); a run that never does counts as not reached (``null``) at its budget. A variant's
figure is the median over its seeds (``null`` if most seeds did not reach it); its ratio to PPO carries a bound
(``=``, ``<`` when PPO did not reach the threshold within its budget, ``>`` when the variant did not).

The from-scratch joint-WAM variants start with no critic warm-up (it exists to protect a pretrained policy) and,
with imagination, imagine from iteration ``imagination_warmup`` on.

The pretrained variant pretrains a joint WAM once per task by DAgger on the task's scripted expert (``wam dagger``, MLP
trunk: behaviour cloning of a noisy expert's dataset alone left the WAM far from the expert, see the README's "Joint
WAM in rsl-rl PPO"), then fine-tunes its last round per seed; its env steps include every DAgger round's transitions.

Sizes (:data:`SETTINGS`) fit a 2-core CPU (the measured wall times are in the README's sample-efficiency notes); on
a GPU, run ``wam bench sample_efficiency --device cuda:0`` after raising ``num_envs`` and ``max_iterations`` (the same
script).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
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
    scratch_iterations: int | None = None
    """Iterations of the from-scratch joint-WAM runs (``None``: ``max_iterations``): about half PPO's median steps to
    the threshold bounds the wall time and still decides the ``<= 0.5x`` target (a run that has not reached the
    threshold by then is reported as ``> budget / PPO's median``)."""
    imagination_warmup: int = 10
    """Iterations before imagined rollouts join the PPO batch (the task config's 50 is never reached in a bench
    run)."""


SETTINGS = (
    # Cartpole: DAgger's round 0 (behaviour cloning of the noisy expert) already balances (the README's "Sample
    # efficiency on WAM-Cartpole" has the rounds' scores), so further rounds would only add labeled env steps
    TaskSetting(
        "WAM-Cartpole",
        threshold=0.9,
        num_envs=256,
        max_iterations=60,
        seeds=(1, 2, 3),
        dataset_steps=200,
        dagger_rounds=0,
    ),
    TaskSetting(
        "WAM-Push-Cube", threshold=0.15, num_envs=512, max_iterations=80, seeds=(1, 2, 3), scratch_iterations=24
    ),
)
JOBS_ENV = "WAM_SAMPLE_EFFICIENCY_JOBS"
"""Environment variable: runs at a time (default 1; on a 2-core CPU, 2 gain throughput since a run's physics
stepping is mostly one thread)."""
RUNS_ENV = "WAM_SAMPLE_EFFICIENCY_RUNS"
"""Environment variable: the runs directory of an interrupted benchmark to resume (its finished runs and DAgger
pretraining are read back, the rest is run); default a new ``logs/bench/sample_efficiency_runs/<time>/``."""
FINISHED = "[wam] run logged in"
"""The line ``wam train`` prints when a run has ended (reached its iterations, or checkpointed on SIGTERM)."""
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


TOTAL_STEPS = re.compile(r"^\s*Total steps:\s+(\d+)")
SUCCESS = re.compile(r"^\s*Metrics/success_rate:\s+([-+0-9.eE]+|nan)")


class CurveReader:
    """(env steps, success rate) per logged iteration, read from rsl-rl's console log line by line (``Total
    steps: N`` opens an iteration's block, ``Metrics/success_rate: x`` is the success term's mean over the episodes
    that ended in it; an iteration where none ended prints no rate and adds no point)."""

    def __init__(self) -> None:
        self.steps: list[int] = []
        self.success: list[float] = []
        self._total: int | None = None
        self.per_iteration: int | None = None
        """Env steps of one iteration (the first block's total)."""

    def feed(self, line: str) -> None:
        if match := TOTAL_STEPS.match(line):
            self._total = int(match.group(1))
            self.per_iteration = self.per_iteration or self._total
        elif (match := SUCCESS.match(line)) and self._total is not None:
            self.steps.append(self._total)
            self.success.append(float(match.group(1)))
            self._total = None


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
    started = time.perf_counter()
    if _finished_dagger(out, setting):
        _progress(f"{setting.task} DAgger pretraining: reused {out}")
    else:
        resume = ["--resume"] if (out / "dagger.json").is_file() else []  # an interrupted one continues
        _wam(
            ["dagger", "--task", setting.task, "--out", str(out), "--num_envs", str(setting.dataset_envs),
             "--steps", str(setting.dataset_steps), "--rounds", str(setting.dagger_rounds),
             "--epochs", str(setting.pretrain_epochs), "--eval_episodes", str(setting.dataset_envs),
             "--device", device, *resume, "model.trunk.kind=mlp"],
            work,
        )  # fmt: skip
    summary = json.loads((out / "dagger.json").read_text())
    manifest = json.loads((out / "data" / "manifest.json").read_text())
    transitions = int(manifest["totals"]["transitions"])
    _progress(f"{setting.task} DAgger pretraining: {transitions} env steps, {time.perf_counter() - started:.0f} s")
    return out / f"round_{summary['rounds'][-1]['round']}" / "checkpoints" / "last.pt", transitions


def _finished_dagger(out: Path, setting: TaskSetting) -> bool:
    """Whether ``out`` holds a DAgger run with every round of ``setting`` (a resumed benchmark reuses it)."""
    summary = out / "dagger.json"
    return summary.is_file() and len(json.loads(summary.read_text())["rounds"]) == setting.dagger_rounds + 1


@dataclass
class Run:
    """One ``wam train`` run's curve and outcome."""

    variant: str
    seed: int
    steps: list[int]
    """Env steps at each logged iteration, pretraining steps included."""
    success: list[float]
    reached: int | None
    """Env steps at which the threshold was reached (pretraining included); ``None``: not within the budget."""
    budget: int
    """Env steps the run was allowed (pretraining included)."""
    per_iteration: int
    wall_time: float


_LOCK = threading.Lock()


def _progress(message: str) -> None:
    with _LOCK:
        print(f"[sample_efficiency] {message}", file=sys.stderr, flush=True)


def _train(
    setting: TaskSetting,
    variant: str,
    seed: int,
    device: str,
    work: Path,
    max_iterations: int,
    offset: int = 0,
    overrides: tuple[str, ...] = (),
) -> Run:
    """One ``wam train`` run in its own directory, read live from its console log and ended (SIGTERM: ``wam train``
    checkpoints after the iteration in progress and exits 0) as soon as it reaches the threshold."""
    cwd = work / f"{variant}_seed{seed}"
    if cwd.is_dir() and any(cwd.iterdir()):  # an empty directory has not run
        return _finished_run(cwd, setting, variant, seed, max_iterations, offset)
    cwd.mkdir(parents=True, exist_ok=True)
    args = ["train", "--task", setting.task, "--agent", AGENTS[variant], "--num_envs", str(setting.num_envs),
            "--max_iterations", str(max_iterations), "--seed", str(seed), "--device", device, *overrides]  # fmt: skip
    reader, tail, reached = CurveReader(), deque(maxlen=15), None
    started = time.perf_counter()
    environment = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with (
        (cwd / "train.log").open("w") as log,
        subprocess.Popen(
            [sys.executable, "-m", "wam_isaac", *args], cwd=cwd, env=environment, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        ) as process,
    ):  # fmt: skip
        for line in process.stdout:
            log.write(line)
            tail.append(line.rstrip())
            reader.feed(line)
            if reached is None:
                reached = steps_to_threshold(reader.steps, reader.success, setting.threshold, offset)
                if reached is not None:
                    process.send_signal(signal.SIGTERM)
        returncode = process.wait()
    if returncode != 0:
        raise RuntimeError(f"wam {' '.join(args)} failed ({returncode}), log {cwd / 'train.log'}:\n" + "\n".join(tail))
    per_iteration = reader.per_iteration or 0
    run = Run(
        variant, seed, [s + offset for s in reader.steps], reader.success, reached,
        max_iterations * per_iteration + offset, per_iteration, time.perf_counter() - started,
    )  # fmt: skip
    _progress(
        f"{setting.task} {variant} seed {seed}: threshold {setting.threshold} at {reached} env steps"
        f" (budget {run.budget}), last success {run.success[-1] if run.success else None}, {run.wall_time:.0f} s"
    )
    return run


def _finished_run(cwd: Path, setting: TaskSetting, variant: str, seed: int, max_iterations: int, offset: int) -> Run:
    """The :class:`Run` of a finished run's log, or of an interrupted one that had reached the threshold (a resumed
    benchmark: the same rule on the same lines)."""
    log = cwd / "train.log"
    text = log.read_text() if log.is_file() else ""
    reader = CurveReader()
    for line in text.splitlines(keepends=True):
        reader.feed(line)
    reached = steps_to_threshold(reader.steps, reader.success, setting.threshold, offset)
    if FINISHED not in text and reached is None:  # one that reached it would have been stopped there anyway
        raise RuntimeError(f"{cwd} holds an unfinished run: remove it to run it again")
    per_iteration = reader.per_iteration or 0
    seconds = re.search(r"^Training time: ([0-9.]+) seconds", text, re.MULTILINE)
    run = Run(
        variant, seed, [s + offset for s in reader.steps], reader.success, reached,
        max_iterations * per_iteration + offset, per_iteration, float(seconds.group(1)) if seconds else 0.0,
    )  # fmt: skip
    _progress(f"{setting.task} {variant} seed {seed}: reused {cwd}, threshold at {reached} env steps")
    return run


def ratio_to_ppo(runs: list[Run], ppo: list[Run]) -> tuple[float | None, str | None]:
    """A variant's median env steps over PPO's, with its bound: ``"="`` when both reached the threshold; ``"<"``
    when PPO did not within its budget (its median exceeds the smallest budget of its runs that did not reach, so
    the ratio is below the value); ``">"`` when the variant did not (the same argument on its side); ``(None,
    None)`` when neither did."""
    mine, theirs = _median_or_none([r.reached for r in runs]), _median_or_none([r.reached for r in ppo])
    if mine is not None and theirs is not None:
        return mine / theirs, "="
    if mine is not None:
        return mine / min(r.budget for r in ppo if r.reached is None), "<"
    if theirs is not None:
        return min(r.budget for r in runs if r.reached is None) / theirs, ">"
    return None, None


def _plot(runs: dict[str, list[Run]], thresholds: dict[str, float], path: Path) -> None:
    """Success rate against env steps, one panel per task, every seed a line, one colour per variant; a dot where
    a run reached the threshold (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, len(runs), figsize=(7 * len(runs), 4.5), squeeze=False)
    for axis, (task, task_runs) in zip(axes[0], runs.items(), strict=True):
        for colour, variant in enumerate(AGENTS):
            for index, run in enumerate(r for r in task_runs if r.variant == variant):
                label = f"{variant} ({sum(r.variant == variant for r in task_runs)} seeds)" if index == 0 else None
                axis.plot(run.steps, run.success, color=f"C{colour}", alpha=0.8, linewidth=1.2, label=label)
                if run.reached is not None:
                    axis.plot([run.reached], [thresholds[task]], "o", color=f"C{colour}", markersize=5)
        axis.axhline(thresholds[task], color="k", linestyle="--", linewidth=0.8)
        axis.set_title(f"{task}: success rate while training (threshold {thresholds[task]})")
        axis.set_xlabel("env steps (pretraining data included)")
        axis.set_ylabel(f"Metrics/success_rate (mean of {SMOOTHING} its. for the threshold)")
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def scratch_variants(setting: TaskSetting) -> list[tuple[str, tuple[str, ...]]]:
    """The from-scratch joint-WAM variants and their overrides: no critic warm-up (it protects a pretrained policy),
    imagination from iteration ``imagination_warmup``."""
    scratch = ("agent.algorithm.critic_warmup_iterations=0",)
    imagination = (*scratch, f"agent.algorithm.imagination.warmup_iterations={setting.imagination_warmup}")
    return [("wam", scratch), ("wam_imagination", imagination)]


def run(args) -> list[dict]:
    """Every task: DAgger pretraining, PPO's and the from-scratch joint-WAM variants' seeds (independent runs), then
    the pretrained variant's seeds, ``$WAM_SAMPLE_EFFICIENCY_JOBS`` runs at a time (default 1); one figure per task
    and variant (median env steps, ratio to PPO with its bound)."""
    settings = QUICK if args.quick else SETTINGS
    if os.environ.get(TASKS_ENV):
        wanted = os.environ[TASKS_ENV].split(",")
        unknown = sorted(set(wanted) - {s.task for s in settings})
        if unknown:
            raise ValueError(f"{TASKS_ENV} names {unknown}; expected some of {[s.task for s in settings]}")
        settings = tuple(s for s in settings if s.task in wanted)
    jobs = int(os.environ.get(JOBS_ENV, "1"))
    if jobs < 1:
        raise ValueError(f"{JOBS_ENV}={jobs}; expected a positive number of concurrent runs")
    out_dir = Path("logs", "bench")
    # absolute: every run's cwd is its own directory
    root = Path(os.environ.get(RUNS_ENV) or out_dir / "sample_efficiency_runs" / time.strftime("%Y-%m-%d_%H-%M-%S"))
    root = root.resolve()
    figures, all_runs = [], {}
    started = time.perf_counter()
    for setting in settings:
        work = root / setting.task
        work.mkdir(parents=True, exist_ok=True)
        device, budget = args.device, setting.max_iterations
        with ThreadPoolExecutor(jobs) as pool:
            pretraining = pool.submit(_pretrain, setting, device, work)
            ppo = [pool.submit(_train, setting, "ppo", s, device, work, setting.max_iterations) for s in setting.seeds]
            later = [
                pool.submit(_train, setting, variant, s, device, work, setting.scratch_iterations or budget, 0, extra)
                for variant, extra in scratch_variants(setting)
                for s in setting.seeds
            ]
            checkpoint, offset = pretraining.result()
            pretrained = (f"agent.algorithm.pretrained_checkpoint={checkpoint}",)
            later += [
                pool.submit(_train, setting, "wam_pretrained", s, device, work, budget, offset, pretrained)
                for s in setting.seeds
            ]
            ppo_runs = [future.result() for future in ppo]
            task_runs = ppo_runs + [future.result() for future in later]
        all_runs[setting.task] = task_runs
        for variant in AGENTS:
            runs = [r for r in task_runs if r.variant == variant]
            ratio, bound = ratio_to_ppo(runs, ppo_runs)
            figures.append(
                {
                    "name": f"sample_efficiency/{setting.task}/{variant}",
                    "value": ratio,
                    "bound": bound,
                    "unit": "x PPO env steps",
                    "target": "<= 0.5 (wam, WAM-Push-Cube)" if variant != "ppo" else None,
                    "median_env_steps": _median_or_none([r.reached for r in runs]),
                    "env_steps_per_seed": [r.reached for r in runs],
                    "budget_env_steps_per_seed": [r.budget for r in runs],
                    "wall_time_s_per_seed": [round(r.wall_time) for r in runs],
                    "threshold": setting.threshold,
                    "num_envs": setting.num_envs,
                    "pretraining_env_steps": offset if variant == "wam_pretrained" else 0,
                }
            )
    plot = out_dir / "sample_efficiency.png"
    _plot(all_runs, {s.task: s.threshold for s in settings}, plot)
    raw = {task: [dataclasses.asdict(r) for r in runs] for task, runs in all_runs.items()}
    (root / "curves.json").write_text(json.dumps(raw))
    figures.append(
        {
            "name": "sample_efficiency/wall_time",
            "value": time.perf_counter() - started,
            "unit": "s",
            "plot": str(plot),
            "runs": str(root),
            "jobs": jobs,
        }
    )
    return figures
