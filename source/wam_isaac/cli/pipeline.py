"""``wam pipeline``: the WAM pipeline in one command, each stage a subprocess of an existing ``wam`` command.

1. generate  ``wam generate`` under the task's scripted expert (random where the task has none) with exploration noise;
2. pretrain  ``wam train-model --model joint`` on that dataset (behaviour cloning + world-model loss);
3. finetune  ``wam train --agent rsl_rl_wam_cfg_entry_point agent.algorithm.pretrained_checkpoint=<2>``: PPO on the
             joint WAM's trunk with world-model steps on the rollouts (rsl-rl's ``model_<i>.pt`` in ``<out>/finetune``);
4. evaluate  the three dimensions: ``wam eval`` of the fine-tuned world model on the dataset's validation envs
             (fidelity, physical commonsense), ``wam play`` of the fine-tuned policy and of the pretrained joint WAM in
             the simulator (action plausibility: success rate, return).

Every artifact lives under ``--out``; ``<out>/logs/<stage>.log`` holds each stage's output and
``<out>/pipeline.json`` the summary. A rerun skips the stages whose artifacts are complete and resumes an interrupted
dataset or pretraining (a fine-tune interrupted before its last checkpoint starts again). The default sizes fit a
2-core CPU budget; the same command with larger ones (``--gen_envs 4096 --num_envs 4096 --device cuda:0``) is the
GPU run. Overrides after the flags go to the stage they configure: ``train.<field>=...`` and ``model.<field>=...`` to
the pretraining (``wam train-model``), ``agent.<field>=...`` to the fine-tune (``wam train``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from .common import check_task, positive_int, resolve_device, split_overrides
from .errors import UsageError

STAGES = ("generate", "pretrain", "finetune", "evaluate")
"""The stages, in order."""
WAM_AGENT = "rsl_rl_wam_cfg_entry_point"
"""The joint-WAM PPO agent entry point the fine-tune stage trains with by default."""
SUMMARY_NAME = "pipeline.json"
"""The summary file under ``--out``."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="generate -> pretrain a joint WAM -> PPO fine-tune with world-model loss -> evaluate, in one command",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--task", default="WAM-Push-Cube", help="task id (default WAM-Push-Cube)")
    parser.add_argument("--out", default=None, help="pipeline directory (default runs/pipeline/<task>)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of every stage")
    stage = parser.add_argument_group("1. generate")
    stage.add_argument("--gen_envs", type=positive_int, default=64, help="parallel envs of the dataset")
    stage.add_argument("--gen_steps", type=positive_int, default=150, help="env steps (each advances all envs)")
    stage.add_argument("--gen_policy", default=None, help="behaviour policy (default: scripted, random without one)")
    stage.add_argument("--gen_noise", type=float, default=0.1, help="exploration noise std on the policy's actions")
    stage = parser.add_argument_group("2. pretrain")
    stage.add_argument("--history", type=positive_int, default=8, help="history H of the joint WAM [steps]")
    stage.add_argument("--forecast", type=positive_int, default=8, help="forecast F of its world-model loss [steps]")
    stage.add_argument("--epochs", type=positive_int, default=4, help="pretraining epochs")
    stage.add_argument("--hidden", type=positive_int, default=128, help="width of the joint WAM's trunk and heads")
    stage = parser.add_argument_group("3. finetune")
    stage.add_argument("--agent", default=WAM_AGENT, help=f"agent entry point of the fine-tune (default {WAM_AGENT})")
    stage.add_argument("--num_envs", type=positive_int, default=64, help="parallel envs of the PPO fine-tune")
    stage.add_argument("--max_iterations", type=positive_int, default=40, help="PPO iterations of the fine-tune")
    stage = parser.add_argument_group("4. evaluate")
    stage.add_argument("--episodes", type=positive_int, default=64, help="closed-loop episodes per policy")
    stage.add_argument("--eval_envs", type=positive_int, default=64, help="parallel envs of the closed loop")
    stage.add_argument(
        "--horizons", type=positive_int, nargs="+", default=[1, 8, 32], help="world-model fidelity horizons [steps]"
    )
    parser.set_defaults(run=run)


class Pipeline:
    """The stages' commands, artifacts and the summary of one ``wam pipeline`` run."""

    def __init__(self, args: argparse.Namespace, overrides: list[str], device: str):
        self.args, self.overrides, self.device = args, overrides, device
        self.out = Path(args.out).resolve()
        self.data = self.out / "data"
        self.pretrained = self.out / "pretrain" / "checkpoints" / "last.pt"
        self.finetune_dir = self.out / "finetune"
        self.eval_dir = self.out / "eval"
        self.summary: dict = {"task": args.task, "out": str(self.out), "device": device, "stages": {}}
        self.cpu_seconds = 0.0
        """CPU time [s] (user + system) of the stages' processes since the last :meth:`record`."""

    # running ------------------------------------------------------------------------------------------------------
    def wam(self, *arguments: str) -> list[str]:
        """A ``wam`` command line run by this interpreter."""
        return [sys.executable, "-m", "wam_isaac", *arguments]

    def stage(self, name: str, command: list[str], cwd: Path | None = None) -> float:
        """Run one stage's ``command`` with its output in ``<out>/logs/<name>.log``; returns its wall time [s].

        Raises:
            UsageError: the command failed (its last output line and the log named), exit code 1.
        """
        log = self.out / "logs" / f"{name}.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        start, cpu = time.monotonic(), children_cpu_seconds()
        with log.open("a") as file:
            file.write(f"$ {' '.join(command)}\n")
            file.flush()
            code = subprocess.run(command, cwd=cwd, stdout=file, stderr=subprocess.STDOUT).returncode
        self.cpu_seconds += children_cpu_seconds() - cpu
        if code != 0:
            error = UsageError(f"stage {name} failed (exit {code}): {last_line(log)} (full output: {log})")
            error.exit_code = 1
            raise error
        return time.monotonic() - start

    def progress(self, index: int, name: str, message: str) -> None:
        print(f"[wam pipeline] {index}/{len(STAGES)} {name}: {message}", flush=True)

    # stages -------------------------------------------------------------------------------------------------------
    def generate(self, index: int) -> None:
        from ..data import summarize

        args = self.args
        target = args.gen_envs * args.gen_steps
        done = summarize(self.data)["transitions"] if (self.data / "manifest.json").is_file() else 0
        seconds = None
        if done >= target:
            self.progress(index, "generate", f"{self.data} already holds {done} transitions: skipped")
        else:
            policy = args.gen_policy or default_policy(args.task)
            self.progress(index, "generate", f"{target} transitions of {args.task} under '{policy}' ...")
            command = self.wam("generate", "--task", args.task, "--num_envs", str(args.gen_envs), "--steps")
            command += [
                str(args.gen_steps),
                "--policy",
                policy,
                "--noise",
                str(args.gen_noise),
                "--out",
                str(self.data),
            ]
            command += ["--seed", str(args.seed), "--device", self.device] + (["--resume"] if done else [])
            seconds = self.stage("generate", command)
        summary = summarize(self.data)
        self.record(
            index,
            "generate",
            seconds,
            dataset=str(self.data),
            transitions=summary["transitions"],
            episodes=summary["episodes"],
            success_rate=summary["success_rate"],
        )

    def pretrain(self, index: int) -> None:
        args = self.args
        epoch = checkpoint_epoch(self.pretrained)
        seconds = None
        if epoch is not None and epoch >= args.epochs:
            self.progress(index, "pretrain", f"{self.pretrained} has {epoch} epochs: skipped")
        else:
            self.progress(index, "pretrain", f"joint WAM, {args.epochs} epochs on {self.data.name} ...")
            command = self.wam("train-model", "--data", str(self.data), "--model", "joint", "--out")
            command += [str(self.pretrained.parents[1]), "--epochs", str(args.epochs), "--device", self.device]
            if epoch is not None:
                command.append("--resume")
            else:
                command += ["--history", str(args.history), "--forecast", str(args.forecast), "--seed", str(args.seed)]
                command += [f"model.trunk.hidden={args.hidden}", f"model.head_hidden={args.hidden}"]
                command += [token for token in self.overrides if token.lstrip("+~").startswith(("train.", "model."))]
            seconds = self.stage("pretrain", command)
        self.record(
            index, "pretrain", seconds, checkpoint=str(self.pretrained), epochs=checkpoint_epoch(self.pretrained)
        )

    def finetune(self, index: int) -> None:
        args = self.args
        marker = self.finetune_dir / "finetune.json"
        previous = json.loads(marker.read_text()) if marker.is_file() else None
        seconds = None
        if previous is not None and Path(previous["checkpoint"]).is_file():
            self.progress(index, "finetune", f"{previous['checkpoint']} exists: skipped")
            run_dir, checkpoint = Path(previous["run_dir"]), Path(previous["checkpoint"])
        else:
            what = "joint-WAM PPO" if args.agent == WAM_AGENT else args.agent
            self.progress(index, "finetune", f"{what}, {args.num_envs} envs x {args.max_iterations} iterations ...")
            self.finetune_dir.mkdir(parents=True, exist_ok=True)
            command = self.wam("train", "--task", args.task, "--agent", args.agent, "--num_envs", str(args.num_envs))
            command += ["--max_iterations", str(args.max_iterations), "--seed", str(args.seed), "--device", self.device]
            if args.agent == WAM_AGENT:
                command.append(f"agent.algorithm.pretrained_checkpoint={self.pretrained}")
            command += [token for token in self.overrides if token.lstrip("+~").startswith("agent.")]
            before = set(run_dirs(self.finetune_dir))
            seconds = self.stage("finetune", command, cwd=self.finetune_dir)  # Isaac Lab logs under <cwd>/logs
            new = sorted(set(run_dirs(self.finetune_dir)) - before)
            if not new:
                raise UsageError(f"stage finetune wrote no run under {self.finetune_dir / 'logs'}")
            run_dir = new[-1]
            checkpoint = last_checkpoint(run_dir)
            marker.write_text(json.dumps({"run_dir": str(run_dir), "checkpoint": str(checkpoint)}) + "\n")
        from .train import summarize_run

        self.record(
            index, "finetune", seconds, run_dir=str(run_dir), checkpoint=str(checkpoint), log=summarize_run(run_dir)
        )

    def evaluate(self, index: int) -> None:
        args = self.args
        finetuned = Path(self.summary["stages"]["finetune"]["checkpoint"])
        self.progress(index, "evaluate", f"{args.episodes} closed-loop episodes per policy, world-model fidelity ...")
        seconds, figures = 0.0, {}
        policies = {"finetuned": finetuned}
        if args.agent == WAM_AGENT:
            policies["pretrained"] = self.pretrained
        for name, checkpoint in policies.items():
            report = self.eval_dir / name / "play.json"
            if not is_report_of(report, checkpoint, args.episodes):
                command = self.wam("play", "--task", args.task, "--checkpoint", str(checkpoint), "--out")
                command += [str(report.parent), "--episodes", str(args.episodes), "--num_envs", str(args.eval_envs)]
                command += ["--seed", str(args.seed), "--device", self.device]
                seconds += self.stage(f"play_{name}", command)
            played = json.loads(report.read_text())
            figures[name] = {key: played[key] for key in ("checkpoint", "episodes", "success_rate", "mean_return")}
            figures[name]["report"] = str(report)
        wam_checkpoint = self.eval_dir / "finetuned_wam.pt"
        if export_finetuned_wam(finetuned, self.pretrained, wam_checkpoint):
            world_model = self.eval_dir / "world_model"
            if not is_report_of(world_model / "eval.json", wam_checkpoint, None):
                command = self.wam("eval", "--checkpoint", str(wam_checkpoint), "--data", str(self.data), "--out")
                command += [str(world_model), "--overwrite", "--device", self.device, "--horizons"]
                command += [str(horizon) for horizon in args.horizons]
                seconds += self.stage("eval_world_model", command)
            figures["world_model"] = world_model_figures(world_model / "eval.json")
        self.record(index, "evaluate", seconds or None, **figures)

    def record(self, index: int, name: str, seconds: float | None, **entry) -> None:
        """Keep a stage's artifacts and figures, print its progress line, rewrite ``pipeline.json``."""
        cpu, self.cpu_seconds = self.cpu_seconds, 0.0
        self.summary["stages"][name] = {
            "seconds": None if seconds is None else round(seconds, 1),
            "cpu_seconds": None if seconds is None else round(cpu, 1),
            **entry,
        }
        took = "skipped" if seconds is None else f"done in {seconds:.0f} s (CPU {cpu:.0f} s)"
        self.progress(index, name, f"{took}; {stage_line(name, self.summary['stages'][name])}")
        self.write_summary()

    def write_summary(self) -> None:
        """Write ``<out>/pipeline.json`` atomically."""
        path = self.out / SUMMARY_NAME
        tmp = path.with_name(f".{path.name}.partial")
        tmp.write_text(json.dumps(self.summary, indent=2) + "\n")
        os.replace(tmp, path)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = stage_overrides(extra)
    check_task(args.task, args.agent)
    device = resolve_device(args.device)
    if args.gen_noise < 0:
        raise UsageError(f"--gen_noise must be >= 0, got {args.gen_noise}")
    if args.out is None:
        args.out = str(Path("runs", "pipeline", args.task.lower()))
    if Path(args.out).exists() and not Path(args.out).is_dir():
        raise UsageError(f"--out '{args.out}' exists and is not a directory")
    pipeline = Pipeline(args, overrides, device)
    pipeline.out.mkdir(parents=True, exist_ok=True)
    start, cpu = time.monotonic(), children_cpu_seconds()
    stages = [pipeline.generate, pipeline.pretrain, pipeline.finetune, pipeline.evaluate]
    if args.agent != WAM_AGENT:  # plain PPO: no dataset, no pretrained WAM
        stages = [pipeline.finetune, pipeline.evaluate]
    for index, stage in enumerate(stages, start=1):
        stage(index + len(STAGES) - len(stages))
    pipeline.summary["wall_seconds"] = round(time.monotonic() - start, 1)
    pipeline.summary["cpu_seconds"] = round(children_cpu_seconds() - cpu, 1)
    pipeline.write_summary()
    wall, cpu = pipeline.summary["wall_seconds"], pipeline.summary["cpu_seconds"]
    print(f"[wam pipeline] finished in {wall:.0f} s (CPU {cpu:.0f} s); summary {pipeline.out / SUMMARY_NAME}")
    return 0


# helpers ----------------------------------------------------------------------------------------------------------
def stage_overrides(extra: list[str]) -> list[str]:
    """Check the leftover arguments: each a ``key=value`` override of ``train.``/``model.`` (pretrain) or ``agent.``
    (fine-tune).

    Raises:
        UsageError: naming the first argument that is not one.
    """
    hint = "wam pipeline takes train.<field>=... / model.<field>=... (pretrain) and agent.<field>=... (fine-tune)"
    return split_overrides(extra, roots=("train", "model", "agent"), presets=(), hint=hint)


def children_cpu_seconds() -> float:
    """User + system CPU time [s] of this process's finished child processes (the stages), all cores summed."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def default_policy(task: str) -> str:
    """``scripted`` where the task registered an expert, else ``random``."""
    from ..rollout.policies import has_expert

    return "scripted" if has_expert(task) else "random"


def last_line(log: Path) -> str:
    """The last non-empty line of a log (progress bars' carriage returns split lines too)."""
    text = log.read_text(errors="replace").replace("\r", "\n")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else "(no output)"


def checkpoint_epoch(path: Path) -> int | None:
    """The epoch of a ``wam train-model`` checkpoint, None when there is none."""
    if not path.is_file():
        return None
    from ..training.checkpoint import load_checkpoint

    return int(load_checkpoint(path)["epoch"])


def run_dirs(root: Path) -> list[Path]:
    """rsl-rl run directories (with ``run.json``) under ``root/logs/rsl_rl``."""
    return sorted(path.parent for path in (root / "logs" / "rsl_rl").glob("*/*/run.json"))


def last_checkpoint(run_dir: Path) -> Path:
    """The highest ``model_<i>.pt`` of an rsl-rl run."""
    checkpoints = sorted(run_dir.glob("model_*.pt"), key=lambda path: int(path.stem.split("_")[1]))
    if not checkpoints:
        raise UsageError(f"the fine-tune run {run_dir} saved no model_<i>.pt")
    return checkpoints[-1]


def is_report_of(report: Path, checkpoint: Path, episodes: int | None) -> bool:
    """Whether ``report`` (play.json / eval.json) exists for ``checkpoint`` (and ``episodes``, if given)."""
    if not report.is_file():
        return False
    content = json.loads(report.read_text())
    same = Path(content.get("checkpoint", "")).resolve() == checkpoint.resolve()
    return same and (episodes is None or content.get("episodes") == episodes)


def export_finetuned_wam(finetuned: Path, pretrained: Path, out: Path) -> bool:
    """Write the fine-tuned run's joint WAM (``wam_state_dict``, ``wam_schema``, ``wam_model_cfg`` of a WamPPO
    checkpoint) as a ``wam train-model`` checkpoint with the pretraining run's configuration (dataset, history,
    validation split), so that ``wam eval`` scores it on the same held-out envs; False for a checkpoint without a
    WAM (plain PPO)."""
    import torch

    from ..training.checkpoint import load_checkpoint, save_checkpoint

    state = torch.load(finetuned, map_location="cpu", weights_only=True)
    if "wam_state_dict" not in state:
        return False
    config = dict(load_checkpoint(pretrained)["config"])
    config["model"] = state["wam_model_cfg"]
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"config": config, "schema": state["wam_schema"], "model": state["wam_state_dict"], "epoch": 0}
    save_checkpoint(out, payload)
    return True


def world_model_figures(report_path: Path) -> dict:
    """The headline of a ``wam eval`` report: the model's error over copy-last's per horizon (``all`` and per state
    term; below 1: better than predicting no motion) and the physics checks' violation rates on predicted and on
    true rollouts."""
    report = json.loads(report_path.read_text())
    fidelity = report.get("fidelity", {})
    figures = {
        "report": str(report_path),
        "horizons": fidelity.get("horizons"),
        "model_over_copy_last": fidelity.get("model_over_copy_last"),
    }
    physics = report.get("physics", {})
    if physics.get("applicable"):
        figures["physics_violation_rate"] = {
            name: {"pred": check["pred"]["rate"], "true": check["true"]["rate"]}
            for name, check in physics["checks"].items()
            if check.get("applicable", True)
        }
    return figures


def stage_line(name: str, entry: dict) -> str:
    """The artifacts and figures of a finished stage, in one line."""
    if name == "generate":
        rate = entry["success_rate"]
        return (
            f"{entry['transitions']} transitions, {entry['episodes']} episodes, success rate "
            f"{'n/a' if rate is None else f'{rate:.3f}'} -> {entry['dataset']}"
        )
    if name == "pretrain":
        return f"{entry['epochs']} epochs -> {entry['checkpoint']}"
    if name == "finetune":
        return f"{entry['log']}"
    parts = [
        f"{key} success rate {entry[key]['success_rate']:.3f}, mean return {entry[key]['mean_return']:.3f} "
        f"({entry[key]['episodes']} episodes, {entry[key]['report']})"
        for key in ("finetuned", "pretrained")
        if key in entry and entry[key]["success_rate"] is not None
    ]
    if "world_model" in entry:
        model = entry["world_model"]
        ratios = ", ".join(
            f"{value:.3f}@{horizon}"
            for horizon, value in zip(
                model["horizons"] or [], (model["model_over_copy_last"] or {}).get("all", []), strict=False
            )
        )
        parts.append(f"world model error / copy-last {ratios} -> {model['report']}")
    return "; ".join(parts)
