"""Set up and run ``wam train-model``; rebuild a trained model from its checkpoint."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..data.manifest import load_manifest
from ..data.reader import episode_table
from ..distributed.context import DistContext
from ..distributed.normalizers import fit_normalizers_over
from ..distributed.partition import Parts, partition_episodes
from ..distributed.preemption import StopRequest
from ..models.schema import WamSchema
from ..models.wam import build_model
from .action_targets import ACTION_TARGETS, ExpertTargetTable, check_expert_labels
from .checkpoint import load_checkpoint
from .config import PLAIN_NLL_BETA, TrainModelCfg
from .sequences import SequenceTable
from .split import split_episodes
from .trainer import Trainer, fit_normalizers, normalizer_sample

CONFIG_NAME = "config.yaml"


def load_tables(
    cfg: TrainModelCfg, schema: WamSchema, context: DistContext | None = None, num_parts: int | None = None
) -> tuple[SequenceTable | Parts, SequenceTable | None]:
    """The train and validation tables of the dataset, split by ``cfg.train.split`` with the run's seed (the same
    split on every rank). In a job of ``P`` ranks the training episodes are cut into ``P`` parts
    (:func:`~wam_isaac.distributed.partition.partition_episodes`) and each rank opens only its own; only rank 0 opens
    the validation episodes. ``num_parts`` > 1 in a one-process job holds every part (the same steps as that many
    ranks)."""
    context = context or DistContext()
    train_ids, val_ids = split_episodes(cfg.data, cfg.train.val_fraction, cfg.train.seed, cfg.train.split)
    table_class = table_class_for(cfg)
    val = table_class(cfg.data, schema, val_ids) if val_ids and context.is_main else None
    parts = context.world_size if context.distributed else (num_parts or 1)
    if parts == 1:
        return table_class(cfg.data, schema, train_ids), val
    table = episode_table(load_manifest(cfg.data))
    shares = partition_episodes(train_ids, [table[i].num_samples for i in train_ids], parts)
    held = [context.rank] if context.distributed else list(range(parts))
    return Parts([table_class(cfg.data, schema, shares[p]) for p in held], held, parts), val


def table_class_for(cfg: TrainModelCfg) -> type[SequenceTable]:
    """The table serving ``cfg.train.action_target``'s behaviour-cloning targets.

    Raises:
        ValueError: an unknown ``action_target``, or ``expert`` for a model without an action head.
        ManifestError: ``expert`` and the dataset has no expert labels.
    """
    target = cfg.train.action_target
    if target not in ACTION_TARGETS:
        raise ValueError(f"train.action_target '{target}' is not one of {', '.join(ACTION_TARGETS)}")
    if target == "executed":
        return SequenceTable
    if not cfg.model.has_policy:
        raise ValueError(f"train.action_target=expert trains an action head: '{cfg.model.kind}' has none")
    check_expert_labels(load_manifest(cfg.data), cfg.data)
    return ExpertTargetTable


def dataset_schema(data_dir: str | os.PathLike) -> WamSchema:
    """The schema of a dataset (raises :class:`~wam_isaac.models.schema.SchemaError` if it cannot feed a WAM)."""
    return WamSchema.from_manifest(load_manifest(data_dir))


def make_trainer(
    cfg: TrainModelCfg,
    resume: dict[str, Any] | None = None,
    log: Callable | None = print,
    context: DistContext | None = None,
    stop: StopRequest | None = None,
    num_parts: int | None = None,
) -> Trainer:
    """A trainer for ``cfg``: a new model with normalizers fitted on the training split (over every rank's part in a
    distributed job), or the state of ``resume`` (a loaded checkpoint of a run of any number of ranks, whose schema
    must match the dataset's). ``context``, ``stop``: see :class:`Trainer`; ``num_parts``: see :func:`load_tables`."""
    context = context or DistContext()
    schema = dataset_schema(cfg.data)
    if resume is not None:
        WamSchema.from_dict(resume["schema"]).check_compatible(schema)
    if cfg.train.deterministic:
        torch.use_deterministic_algorithms(True)
    torch.manual_seed(cfg.train.seed)  # the same initialization on every rank (DDP also broadcasts rank 0's)
    train_table, val_table = load_tables(cfg, schema, context, num_parts)
    model = build_model(schema, cfg.model).to(cfg.device)
    if resume is None:
        if isinstance(train_table, Parts):
            fit_normalizers_over(model, train_table.tables, context, normalizer_sample)
        else:
            fit_normalizers(model, train_table)
        model.to(cfg.device)
    if context.rank:  # rank-aware seeding: each rank its own stream for anything random during training
        torch.manual_seed(cfg.train.seed * 1_000_003 + 7919 * context.rank)
    trainer = Trainer(cfg, model, train_table, val_table, run_dir=cfg.out, log=log, context=context, stop=stop)
    if resume is not None:
        trainer.load_state(resume)
    return trainer


def save_config(cfg: TrainModelCfg, run_dir: str | os.PathLike) -> Path:
    """Write the resolved configuration to ``<run_dir>/config.yaml`` (atomically) and return its path."""
    from omegaconf import OmegaConf

    path = Path(run_dir) / CONFIG_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(OmegaConf.to_yaml(OmegaConf.structured(cfg)))
    os.replace(temp, path)
    return path


def config_from_dict(data: dict[str, Any]) -> TrainModelCfg:
    """A :class:`TrainModelCfg` from its dict form (as stored in checkpoints). Missing fields take the defaults,
    except ``train.loss.dynamics_beta``: a config saved without it is a run from before beta-NLL, which trained (and
    resumes) with the plain NLL, :data:`PLAIN_NLL_BETA`."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(TrainModelCfg), data))
    if "dynamics_beta" not in ((data.get("train") or {}).get("loss") or {}):
        cfg.train.loss.dynamics_beta = PLAIN_NLL_BETA
    return cfg


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[nn.Module, TrainModelCfg, dict]:
    """Rebuild a trained model from a checkpoint, in eval mode on ``device``.

    Returns:
        ``(model, config, checkpoint)``.

    Raises:
        CheckpointError: the file is not a wam_isaac checkpoint.
    """
    payload = load_checkpoint(path, map_location=device)
    cfg = config_from_dict(payload["config"])
    model = build_model(WamSchema.from_dict(payload["schema"]), cfg.model)
    model.load_state_dict(payload["model"])
    return model.to(device).eval(), cfg, payload
