"""``wam train-model``: train a world model, a joint WAM or a cascaded WAM offline on a ``wam generate`` dataset.

Flags set the common choices; any field of the configuration can be overridden Hydra-style after them
(``train.lr=3e-4``, ``model.trunk.hidden=128``, ``train.loss.teacher_forcing=true``). The run directory gets
``config.yaml`` (the resolved configuration), ``checkpoints/model_<epoch>.pt`` and ``last.pt`` (atomic writes) and
TensorBoard events. ``--resume`` continues the run in ``--out`` from ``checkpoints/last.pt`` exactly where it
stopped, with its saved configuration (``--epochs`` may extend it).

Preemption: SIGTERM or SIGUSR1 stops the run at the next gradient step, writes ``checkpoints/last.pt`` (with the
position inside the epoch) and exits 0; ``--resume`` continues from there (bit-identical to an uninterrupted run on
the CPU with ``train.deterministic=true``).

Several processes: ``torchrun --nproc_per_node=P -m wam_isaac train-model ...`` trains with DistributedDataParallel
(Gloo on the CPU, NCCL on GPUs, rank r on ``cuda:<LOCAL_RANK>``): each rank reads its own part of the training
episodes, the normalizers are fitted on every rank's data, ``train.batch_size`` is the global batch (a multiple of P),
and rank 0 alone validates, logs and writes checkpoints. ``--resume`` accepts a checkpoint of any number of ranks.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import positive_int, rank_context, resolve_device
from .errors import UsageError

OVERRIDE_ROOTS = ("model", "train")
"""Configuration sections the command line may override."""


def add_parser(subparsers) -> None:
    from ..models.config import MODEL_KINDS

    parser = subparsers.add_parser(
        "train-model",
        help="train a world model / joint WAM / cascaded WAM on a dataset",
        description=__doc__,
        epilog="Overrides follow the flags: train.<field>=..., model.<field>=... (see config.yaml of a run).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--data", required=True, help="dataset directory (wam generate)")
    parser.add_argument("--model", required=True, choices=MODEL_KINDS, help="what to train")
    parser.add_argument("--ensemble", type=positive_int, default=None, help="world-model ensemble size K")
    parser.add_argument("--history", type=positive_int, default=None, help="history length H [steps]")
    parser.add_argument("--forecast", type=positive_int, default=None, help="forecast length F [steps]")
    parser.add_argument("--epochs", type=positive_int, default=None, help="training epochs")
    parser.add_argument(
        "--action_target",
        choices=("executed", "expert"),
        default=None,
        help="what the action head imitates: the executed actions (default) or the expert's labels "
        "(wam generate --expert_labels; DAgger); = train.action_target",
    )
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda:0 if available, else cpu)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the split, the initialization, the shuffles")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from checkpoints/last.pt")
    parser.set_defaults(run=run)


def build_config(args: argparse.Namespace, overrides: list[str]):
    """The run's :class:`TrainModelCfg` from the flags and the overrides.

    Raises:
        UsageError: a malformed override, or one naming no field / a value of the wrong type.
    """
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    from ..models.config import model_cfg
    from ..training.config import TrainModelCfg

    cfg = TrainModelCfg(data=str(args.data), out=str(args.out), device=args.device, model=model_cfg(args.model))
    for name in ("history", "forecast", "epochs", "seed"):
        if getattr(args, name) is not None:
            setattr(cfg.train, name, getattr(args, name))
    if args.ensemble is not None:
        cfg.model.ensemble = args.ensemble
    if getattr(args, "action_target", None) is not None:
        cfg.train.action_target = args.action_target
    for token in overrides:
        key = token.split("=", 1)[0]
        if "=" not in token or key.split(".")[0] not in OVERRIDE_ROOTS:
            raise UsageError(f"malformed override '{token}'; expected train.<field>=value or model.<field>=value")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(cfg), OmegaConf.from_dotlist(overrides))
        return OmegaConf.to_object(merged)
    except OmegaConfBaseException as error:
        raise UsageError(f"bad override: {str(error).splitlines()[0]}") from None


def check_config(cfg) -> None:
    """Raise a :class:`UsageError` for a configuration that cannot train."""
    if cfg.model.ensemble > 1 and cfg.model.has_policy:
        raise UsageError(f"--ensemble applies to world models (mlp, gru, transformer), not to '{cfg.model.kind}'")
    if cfg.model.trunk.kind == "transformer" and cfg.train.history + cfg.train.forecast > cfg.model.trunk.context:
        raise UsageError(
            f"history + forecast = {cfg.train.history + cfg.train.forecast} exceeds the transformer's context "
            f"{cfg.model.trunk.context}; raise model.trunk.context"
        )
    beta = cfg.train.loss.dynamics_beta
    if not 0.0 <= beta <= 1.0:
        raise UsageError(
            "train.loss.dynamics_beta must be in [0, 1] (0: the plain Gaussian NLL, 1: the squared error's gradient), "
            f"got {beta}"
        )


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..distributed.preemption import StopRequest

    stop = StopRequest().install()  # from here on SIGTERM / SIGUSR1 end the run at a safe point, with exit 0
    context = rank_context()
    stop.context = context
    args.device = context.device(resolve_device(args.device))
    context.init(args.device)
    try:
        code = train(args, extra, context, stop)
        context.barrier()  # leave the group together: a rank tearing Gloo down while another still uses it aborts
        return code
    finally:
        context.shutdown()


def train(args: argparse.Namespace, extra: list[str], context, stop) -> int:
    """Load or build the configuration, make the trainer (this rank's part of the data), fit, report."""
    from ..data.errors import ManifestError
    from ..models.schema import SchemaError
    from ..training.checkpoint import CheckpointError, load_checkpoint
    from ..training.run import config_from_dict, make_trainer, save_config

    out = Path(args.out)
    resume = None
    if args.resume:
        last = out / "checkpoints" / "last.pt"
        try:
            resume = load_checkpoint(last, map_location=args.device)
        except CheckpointError as error:
            raise UsageError(f"cannot resume: {error}") from None
        cfg = config_from_dict(resume["config"])
        cfg.device, cfg.data, cfg.out = args.device, str(args.data), str(out)
        if args.epochs is not None:
            cfg.train.epochs = args.epochs
        if cfg.model.kind != args.model:
            raise UsageError(f"--model {args.model} but the run in {out} trained a '{cfg.model.kind}' model")
        if resume["epoch"] >= cfg.train.epochs:
            raise UsageError(f"the run in {out} already completed {resume['epoch']} of {cfg.train.epochs} epochs")
    else:
        cfg = build_config(args, extra)
        cfg.device = args.device
        if (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir()):
            raise UsageError(f"{out} already holds a run; use --resume to continue it or choose another --out")
    check_config(cfg)
    if cfg.train.batch_size % context.world_size:
        raise UsageError(
            f"train.batch_size {cfg.train.batch_size} (the global batch) is not a multiple of the {context.world_size} "
            "ranks"
        )
    if not Path(cfg.data).is_dir():
        raise UsageError(f"dataset directory '{cfg.data}' does not exist")
    try:
        trainer = make_trainer(cfg, resume=resume, context=context, stop=stop)
    except (SchemaError, ManifestError) as error:
        raise UsageError(str(error)) from None
    except ValueError as error:  # e.g. no window fits in the episodes
        raise UsageError(str(error)) from None
    if context.is_main:
        save_config(cfg, out)
    start = trainer.epoch
    ranks = f", {context.world_size} ranks" if context.distributed else ""
    if context.is_main:
        print(
            f"[wam] {cfg.model.kind} on {cfg.data}: {len(trainer.train_table)} train transitions"
            f"{' on rank 0' if context.distributed else ''} / "
            f"{len(trainer.val_table) if trainer.val_table else 0} val transitions, history {cfg.train.history}, "
            f"forecast {cfg.train.forecast}, epochs {start}->{cfg.train.epochs}, device {cfg.device}{ranks}"
        )
    try:
        metrics = trainer.fit()
    finally:
        trainer.close()
    last = out / "checkpoints" / "last.pt"
    if trainer.interrupted is not None:
        if context.is_main:
            print(
                f"[wam] {trainer.interrupted}: checkpoint {last} in epoch {trainer.epoch + 1} after batch "
                f"{trainer.batch} of {trainer.steps_per_epoch}; --resume continues the run"
            )
        return 0
    figures = ", ".join(f"{name}={value:.4g}" for name, value in metrics.items() if name.count("/") == 1)
    if context.is_main:
        print(f"[wam] run in {out}, checkpoint {last}: {figures}")
    return 0
