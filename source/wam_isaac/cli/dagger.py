"""``wam dagger``: pretrain a joint (or cascaded) WAM by DAgger (Ross et al. 2011) on a task's scripted expert.

Behaviour cloning from a noisy expert's dataset loses to covariate shift: the learner drifts into states the expert
never visited and has never been shown what to do there. The scripted expert can label any state, so DAgger asks it:

- round 0: the expert with exploration noise ``--expert_noise`` generates ``--steps`` steps of ``--num_envs`` envs,
  each step labeled with the expert's noise-free action (``expert_actions``); a WAM is trained on them
  (``train.action_target=expert``: the action head imitates the labels, the world model the executed transitions);
- round k = 1..N: the current WAM acts (mean action; with probability ``beta_k = --beta * --beta_decay^(k-1)`` per env
  and step the expert's action instead, plus ``--noise``), the expert labels every visited state, the steps join the
  dataset (a new segment of ``<out>/data``: the aggregate), and the WAM is trained on the aggregate (warm-started from
  the previous round's, ``--round_epochs`` epochs);
- after every round the WAM controls the env alone, closed loop with its mean action (``wam play``'s harness), for
  ``--eval_episodes`` episodes: success rate and mean return. ``--eval_expert`` scores the expert first (noise 0 and
  ``--expert_noise``).

Everything runs in one process on one env (one simulator start). Artifacts under ``--out``: ``data/`` (the aggregate
dataset, ``wam inspect``), ``round_<k>/`` (a ``wam train-model`` run: ``config.yaml``, ``checkpoints/last.pt``, events)
and ``dagger.json`` (per round: the behaviour policy's figures, the dataset size, the checkpoint and its closed-loop
figures). Overrides after the flags go to the WAM (``model.<field>=...``, ``train.<field>=...``). ``--resume`` continues
a finished or interrupted run in ``--out`` after its last completed round, up to ``--rounds`` (same flags).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .common import check_task, positive_int, resolve_device, simulation, task_env_cfg
from .errors import UsageError

SUMMARY_NAME = "dagger.json"
"""The summary under ``--out``."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "dagger",
        help="pretrain a joint WAM by DAgger on the task's scripted expert (closed-loop success per round)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Overrides follow the flags: model.<field>=..., train.<field>=... (the WAM; see a round's config.yaml).",
    )
    parser.add_argument("--task", required=True, help="task id with a scripted expert, e.g. WAM-Push-Cube")
    parser.add_argument("--out", required=True, help="run directory (created; must not hold a DAgger run)")
    parser.add_argument("--rounds", type=int, default=5, help="DAgger rounds after the expert's round 0")
    parser.add_argument("--num_envs", type=positive_int, default=64, help="parallel envs (generation and evaluation)")
    parser.add_argument("--steps", type=positive_int, default=150, help="env steps generated per round")
    parser.add_argument("--expert_noise", type=float, default=0.1, help="exploration noise std of round 0's expert")
    parser.add_argument("--noise", type=float, default=0.0, help="exploration noise std in rounds >= 1")
    parser.add_argument("--beta", type=float, default=0.5, help="expert mixing probability of round 1")
    parser.add_argument("--beta_decay", type=float, default=0.5, help="beta of round k: beta * beta_decay^(k-1)")
    parser.add_argument("--model", default="joint", choices=("joint", "cascaded"), help="the WAM kind")
    parser.add_argument("--history", type=positive_int, default=2, help="history H of the WAM [steps]")
    parser.add_argument("--forecast", type=positive_int, default=2, help="forecast F of its world-model loss [steps]")
    parser.add_argument("--epochs", type=positive_int, default=25, help="training epochs of round 0")
    parser.add_argument("--round_epochs", type=positive_int, default=5, help="epochs of each later round (warm)")
    parser.add_argument("--eval_episodes", type=positive_int, default=256, help="closed-loop episodes per round")
    parser.add_argument("--eval_seed", type=int, default=7, help="env seed of every closed-loop evaluation")
    parser.add_argument("--eval_expert", action="store_true", help="score the expert (noise 0 and --expert_noise)")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generation and the training")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out after its last round")
    parser.set_defaults(run=run)


def check_args(args: argparse.Namespace, extra: list[str]) -> None:
    """Raise a :class:`UsageError` for arguments that cannot run (before any simulator starts)."""
    from ..rollout.policies import has_expert

    check_task(args.task)
    if not has_expert(args.task):
        raise UsageError(f"task {args.task} has no scripted expert: DAgger needs one to label the visited states")
    if args.rounds < 0:
        raise UsageError(f"--rounds must be >= 0, got {args.rounds}")
    for name in ("expert_noise", "noise"):
        if getattr(args, name) < 0:
            raise UsageError(f"--{name} must be >= 0, got {getattr(args, name)}")
    for name in ("beta", "beta_decay"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            raise UsageError(f"--{name} must be in [0, 1], got {getattr(args, name)}")
    for token in extra:
        if "=" not in token or token.split(".")[0] not in ("model", "train"):
            raise UsageError(f"malformed override '{token}'; expected model.<field>=value or train.<field>=value")
    out = Path(args.out)
    if args.resume:
        if not (out / SUMMARY_NAME).exists():
            raise UsageError(f"--resume: {out} holds no {SUMMARY_NAME}; start the run without --resume")
        done = len(json.loads((out / SUMMARY_NAME).read_text())["rounds"])
        if done > args.rounds:
            raise UsageError(f"--resume: {out} already ran {done - 1} rounds after round 0; raise --rounds")
    elif (out / SUMMARY_NAME).exists() or (out / "data").exists():
        raise UsageError(f"{out} already holds a DAgger run; choose another --out or pass --resume")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    check_args(args, extra)
    device = resolve_device(args.device)
    wam_config(args, extra, round_index=0, device=device)  # refuses bad overrides before the simulator starts
    return dagger(args, extra, device)


def wam_config(args: argparse.Namespace, extra: list[str], round_index: int, device: str):
    """The ``wam train-model`` configuration of round ``round_index``."""
    out = Path(args.out)
    epochs = args.epochs if round_index == 0 else args.round_epochs
    namespace = argparse.Namespace(
        data=out / "data", out=out / f"round_{round_index}", device=device, model=args.model, ensemble=None,
        history=args.history, forecast=args.forecast, epochs=epochs, seed=args.seed, action_target="expert",
    )  # fmt: skip
    from .train_model import build_config, check_config

    cfg = build_config(namespace, extra)
    cfg.device = device
    check_config(cfg)
    return cfg


def dagger(args: argparse.Namespace, extra: list[str], device: str) -> int:
    """Start the env, run the rounds, write the summary."""
    import gymnasium as gym

    from ..data import config_hash
    from ..rollout.policies import load_expert
    from .generate import _jsonable

    env_cfg, _ = task_env_cfg(args.task, [], device)
    env_cfg.scene.num_envs = args.num_envs
    env_cfg.seed = args.seed
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary = {"task": args.task, "args": {k: v for k, v in vars(args).items() if k != "run"}, "overrides": extra}
    summary["rounds"] = []
    if args.resume:  # the rounds done so far (a round interrupted before its summary entry runs again)
        summary = json.loads((out / SUMMARY_NAME).read_text())
    with simulation(env_cfg, device):
        env = gym.make(args.task, cfg=env_cfg).unwrapped
        try:
            expert = load_expert(args.task, env)
            cfg_hash = config_hash(_jsonable(env_cfg.to_dict()))
            if args.eval_expert and "expert" not in summary:
                summary["expert"] = score_expert(env, expert, args)
                write_summary(out, summary)
            checkpoint = summary["rounds"][-1]["checkpoint"] if summary["rounds"] else None
            for index in range(len(summary["rounds"]), args.rounds + 1):
                record = run_round(env, expert, args, extra, device, index, checkpoint, cfg_hash)
                checkpoint = record["checkpoint"]
                summary["rounds"].append(record)
                write_summary(out, summary)
        finally:
            env.close()
    best = max(summary["rounds"], key=lambda r: r["closed_loop"]["success_rate"] or 0.0)
    print(
        f"[wam] dagger {args.task}: best round {best['round']} success {best['closed_loop']['success_rate']:.3f} "
        f"({best['checkpoint']}); summary {out / SUMMARY_NAME}, dataset {out / 'data'}"
    )
    return 0


def score_expert(env, expert, args: argparse.Namespace) -> dict:
    """The expert's closed-loop figures with noise 0 and ``--expert_noise`` (same harness and seed as the WAMs')."""
    from ..evaluation.closed_loop import run_policy_closed_loop
    from ..rollout.policies import ExplorationNoise

    figures = {}
    for noise in (0.0, args.expert_noise):
        start = time.process_time()
        stats = run_policy_closed_loop(env, ExplorationNoise(expert, noise), args.eval_episodes, seed=args.eval_seed)
        figures[f"noise_{noise:g}"] = stats.to_dict(args.eval_episodes)
        result = figures[f"noise_{noise:g}"]
        print(
            f"[wam] dagger expert, noise {noise:g}: {result['episodes']} episodes, success rate "
            f"{result['success_rate']:.3f}, mean return {result['mean_return']:.3f} "
            f"({time.process_time() - start:.0f} s CPU)",
            flush=True,
        )
    return figures


def run_round(env, expert, args, extra, device: str, index: int, previous: str | None, cfg_hash: str) -> dict:
    """Generate (expert in round 0, the previous WAM mixed with the expert after), train on the aggregate, score."""
    from ..rollout.policies import ExpertMixture, ExplorationNoise, WamCheckpointPolicy

    beta = 1.0 if index == 0 else args.beta * args.beta_decay ** (index - 1)
    if index == 0:
        behaviour, noise, name = expert, args.expert_noise, "expert"
    else:
        behaviour, noise, name = WamCheckpointPolicy(env, previous), args.noise, f"round {index - 1} WAM"
        if beta > 0:
            behaviour = ExpertMixture(behaviour, expert, beta)
    tag = f"[wam] dagger round {index}/{args.rounds}"
    sizes = f"{args.num_envs} envs x {args.steps} steps"
    print(f"{tag}: generate {sizes}, {name}, beta {beta:g}, noise {noise:g}", flush=True)
    start = time.process_time()
    stats = generate_segment(env, ExplorationNoise(behaviour, noise), expert, args, index, cfg_hash)
    generation = {
        "behaviour": name,
        "beta": beta,
        "noise": noise,
        "episodes": stats.episodes,
        "transitions": stats.transitions,
        "success_rate": stats.successes / max(stats.episodes, 1),
        "cpu_seconds": time.process_time() - start,
    }
    print(
        f"{tag}: {stats.transitions} transitions in {stats.episodes} episodes, behaviour success "
        f"{generation['success_rate']:.3f} ({generation['cpu_seconds']:.0f} s CPU)",
        flush=True,
    )
    start = time.process_time()
    checkpoint, figures = train_round(args, extra, device, index, previous)
    training = {"cpu_seconds": time.process_time() - start, **figures}
    print(
        f"{tag}: trained {checkpoint} ({training['cpu_seconds']:.0f} s CPU): val action_mse "
        f"{figures.get('val/action_mse', float('nan')):.4f}",
        flush=True,
    )
    start = time.process_time()
    closed = score_wam(env, checkpoint, args)
    print(
        f"{tag}: closed loop (mean action) {closed['episodes']} episodes, success rate {closed['success_rate']:.3f}, "
        f"mean return {closed['mean_return']:.3f} ({time.process_time() - start:.0f} s CPU)",
        flush=True,
    )
    return {"round": index, "generation": generation, "training": training, "checkpoint": checkpoint,
            "closed_loop": closed}  # fmt: skip


def generate_segment(env, behaviour, expert, args, index: int, cfg_hash: str):
    """Append one segment of ``--steps`` steps under ``behaviour``, labeled by ``expert``, to ``<out>/data``."""
    from ..data import DatasetWriter, begin_segment
    from ..labels.labeler import labeler_cfg_for
    from ..rollout.driver import RolloutDriver
    from .generate import _next_episode_index

    data = Path(args.out) / "data"
    env_args = {"env_name": args.task, "type": 2, "env_kwargs": {"num_envs": args.num_envs, "policy": "dagger"}}
    seed, _ = begin_segment(data, args.task, cfg_hash, env_args, args.seed, resume=True)
    first = _next_episode_index(str(data), env)

    def writer_factory(specs):
        return DatasetWriter(data, args.task, cfg_hash, specs, resume=True)

    labeler_cfg = labeler_cfg_for(args.task, horizons=(1, 8))
    driver = RolloutDriver(env, behaviour, writer_factory, labeler_cfg, seed=seed, first_episode_index=first,
                           expert=expert)  # fmt: skip
    return driver.run(args.steps)


def train_round(args, extra, device: str, index: int, previous: str | None) -> tuple[str, dict]:
    """Train round ``index``'s WAM on the aggregate (warm-started from ``previous``); returns its checkpoint and the
    last epoch's figures."""
    import torch

    from ..data.errors import ManifestError
    from ..training.run import make_trainer, save_config

    cfg = wam_config(args, extra, index, device)
    try:
        trainer = make_trainer(cfg, log=lambda line: print(line, flush=True))
    except (ValueError, ManifestError) as error:  # a schema or manifest the trainer refuses, no batch fits the data
        raise UsageError(f"round {index}: {error}") from None
    if previous is not None:  # weights and normalizers of the previous round
        payload = torch.load(previous, map_location=device, weights_only=False)
        trainer.model.load_state_dict(payload["model"])
    save_config(cfg, cfg.out)
    try:
        metrics = trainer.fit()
    finally:
        trainer.close()
    return str(Path(cfg.out) / "checkpoints" / "last.pt"), metrics


def score_wam(env, checkpoint: str, args) -> dict:
    """The WAM's closed-loop figures (mean action, ``--eval_episodes`` episodes, seed ``--eval_seed``)."""
    from ..evaluation.closed_loop import run_closed_loop
    from ..training.run import load_model

    model, cfg, _ = load_model(checkpoint, env.device)
    stats = run_closed_loop(env, model, model.schema, cfg.train.history, args.eval_episodes, seed=args.eval_seed)
    return stats.to_dict(args.eval_episodes)


def write_summary(out: Path, summary: dict) -> None:
    """Write ``dagger.json`` atomically."""
    from .play import write_json

    write_json(out / SUMMARY_NAME, summary)
