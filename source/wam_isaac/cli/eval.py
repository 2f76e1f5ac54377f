"""``wam eval``: evaluate a trained WAM on three dimensions and write ``<out>/eval.json`` plus plots.

1. fidelity: normalized RMSE of the world model's autoregressive rollouts on the validation episodes at each
   ``--horizons`` step (``fidelity_vs_horizon.png``, ``trajectories.png``);
2. physical commonsense: penetration, energy from nowhere, gravity and contact checks on the predicted rollouts and
   on the true trajectories of the same windows, side by side (tasks that register a physics spec);
3. action plausibility (with ``--task``): the model's action head in closed loop in the real simulator.

A pixel model's ``model.pt`` (``wam train-pixel``) is scored on the same dimensions through its frames and its state
read-out (:mod:`wam_isaac.evaluation.visual_eval`): PSNR/SSIM per horizon beside copy-last-frame and ``strip.png``.

``--out`` may hold other files: only ``eval.json`` and the plots are written, and an existing ``eval.json`` is
replaced only with ``--overwrite``. Hydra overrides ``env.<field>=...`` after the flags edit the closed-loop env.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import check_task, positive_int, resolve_device, simulation, split_overrides, task_env_cfg
from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="evaluate a WAM checkpoint: fidelity, physics, closed loop",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--checkpoint", required=True, help="checkpoint of wam train-model (e.g. checkpoints/last.pt)")
    parser.add_argument("--data", required=True, help="dataset directory (wam generate) with the model's keys")
    parser.add_argument("--out", required=True, help="output directory of eval.json and the plots")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing eval.json (and plots) in --out")
    parser.add_argument("--task", default=None, help="run the action head closed loop in this task (the dataset's)")
    parser.add_argument("--num_envs", type=positive_int, default=4, help="closed loop: parallel environments")
    parser.add_argument("--episodes", type=positive_int, default=16, help="closed loop: episodes to evaluate")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=0, help="closed loop: seed of the environment")
    parser.add_argument(
        "--horizons", type=positive_int, nargs="+", default=[1, 8, 32, 64], help="rollout horizons [steps]"
    )
    parser.add_argument("--stride", type=positive_int, default=8, help="steps between evaluation window starts")
    parser.add_argument("--max_windows", type=positive_int, default=2048, help="cap on the evaluation windows")
    parser.set_defaults(run=run)


def load_inputs(args: argparse.Namespace, device: str):
    """The model, its training config, the dataset's manifest, after every check on the user's input.

    Raises:
        UsageError: missing or foreign checkpoint, missing dataset, keys that differ from the model's, a ``--task``
            other than the dataset's, an ``eval.json`` in ``--out`` without ``--overwrite``.
    """
    from ..data.errors import ManifestError
    from ..data.manifest import load_manifest
    from ..evaluation.report import REPORT_NAME
    from ..models.schema import SchemaError, WamSchema
    from ..training.checkpoint import CheckpointError
    from ..training.run import load_model

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out '{out}' exists and is not a directory")
    if (out / REPORT_NAME).exists() and not args.overwrite:
        raise UsageError(f"{out / REPORT_NAME} exists: pass --overwrite to replace the evaluation outputs")
    try:
        model, cfg, payload = load_model(args.checkpoint, device)
    except CheckpointError as error:
        raise UsageError(str(error)) from None
    if not Path(args.data).is_dir():
        raise UsageError(f"dataset directory '{args.data}' does not exist")
    try:
        manifest = load_manifest(args.data)
        WamSchema.from_dict(payload["schema"]).check_compatible(WamSchema.from_manifest(manifest))
    except (ManifestError, SchemaError) as error:
        raise UsageError(str(error)) from None
    dataset_task = manifest.get("task_id")
    if args.task is not None and args.task != dataset_task:
        raise UsageError(f"--task {args.task} but the dataset {args.data} was generated with {dataset_task}")
    return model, cfg, manifest


def evaluation_episodes(args: argparse.Namespace, cfg) -> tuple[list[int] | None, str]:
    """The episodes to score and how they were chosen: the training run's validation split when ``--data`` is its
    dataset, else every episode (none of them was trained on)."""
    from ..training.split import split_episodes

    if Path(args.data).resolve() != Path(cfg.data).resolve():
        return None, f"all episodes (the model was trained on {cfg.data})"
    try:
        val_ids = split_episodes(args.data, cfg.train.val_fraction, cfg.train.seed, cfg.train.split)[1]
    except ValueError as error:
        raise UsageError(str(error)) from None
    if not val_ids:
        raise UsageError(f"the model was trained on every episode of {args.data} (val_fraction 0): none is held out")
    split = cfg.train.split
    return val_ids, f"validation split by {split} (val_fraction {cfg.train.val_fraction}, seed {cfg.train.seed})"


def run(args: argparse.Namespace, extra: list[str]) -> int:
    overrides = split_overrides(extra)
    if args.task is None and overrides:
        raise UsageError(f"override '{overrides[0]}' needs --task (it edits the closed-loop env)")
    device = resolve_device(args.device)
    from ..models.pixel_training import is_pixel_checkpoint

    if is_pixel_checkpoint(args.checkpoint):
        from ..evaluation.visual_eval import evaluate_pixel

        return evaluate_pixel(args, overrides, device)
    model, cfg, manifest = load_inputs(args, device)
    if args.task is not None:
        check_task(args.task)
    return evaluate(args, overrides, device, model, cfg, manifest)


def evaluate(args, overrides, device, model, cfg, manifest) -> int:
    """Score the three dimensions, write the report and the plots, print the summary."""
    from ..evaluation.closed_loop import not_applicable
    from ..evaluation.fidelity import evaluate_fidelity
    from ..evaluation.physics import compare_physics
    from ..evaluation.plots import plot_fidelity, plot_trajectories
    from ..evaluation.report import REPORT_NAME, summary_table, write_report
    from ..evaluation.spec import physics_spec_for
    from ..models.wam import CascadedWAM, JointWAM
    from ..training.sequences import SequenceTable

    schema = model.schema
    episode_ids, chosen = evaluation_episodes(args, cfg)
    table = SequenceTable(args.data, schema, episode_ids)
    try:
        fidelity = evaluate_fidelity(
            model, table, cfg.train.history, args.horizons, stride=args.stride, max_windows=args.max_windows
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    task = manifest.get("task_id", "")
    spec, why_not = physics_spec_for(task)
    physics = compare_physics(
        fidelity.predicted,
        fidelity.true,
        schema,
        spec,
        why_not,
        fidelity.predicted_contacts,
        fidelity.true_contacts,
    )
    if args.task is None:
        loop = not_applicable("no --task given")
    elif not isinstance(model, (JointWAM, CascadedWAM)):
        loop = not_applicable(f"a '{cfg.model.kind}' model is a world model only: it has no action head")
    else:
        loop = closed_loop_in_simulator(args, overrides, device, model, cfg.train.history)
    report = {
        "checkpoint": str(args.checkpoint),
        "dataset": str(args.data),
        "task": task,
        "model_kind": cfg.model.kind,
        "ensemble": cfg.model.ensemble,
        "history": cfg.train.history,
        "device": device,
        "episodes_scored": chosen,
        "fidelity": fidelity.to_dict(),
        "physics": physics,
        "closed_loop": loop,
    }
    out = Path(args.out)
    write_report(out, report)
    plot_fidelity(fidelity, out / "fidelity_vs_horizon.png")
    plot_trajectories(fidelity, schema, out / "trajectories.png")
    print(f"[wam] eval of {args.checkpoint} ({cfg.model.kind}) on {args.data}, {chosen}")
    print(summary_table(report))
    print(f"[wam] wrote {out / REPORT_NAME} and plots")
    return 0


def closed_loop_in_simulator(args, overrides: list[str], device: str, model, history: int) -> dict:
    """Build the task's env (kit-less Newton on the CPU) and run the model's action head closed loop."""
    import gymnasium as gym

    from ..evaluation.closed_loop import run_closed_loop

    env_cfg, _ = task_env_cfg(args.task, overrides, device)
    env_cfg.scene.num_envs = args.num_envs
    env_cfg.seed = args.seed
    with simulation(env_cfg, device):
        env = gym.make(args.task, cfg=env_cfg).unwrapped
        try:
            stats = run_closed_loop(env, model, model.schema, history, args.episodes, seed=args.seed)
        finally:
            env.close()
    return {**stats.to_dict(args.episodes), "num_envs": args.num_envs}
