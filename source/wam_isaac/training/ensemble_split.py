"""Ensemble members trained on disjoint sets of training envs (``train.ensemble_split=env``).

Each env of a dataset has one startup domain-randomization draw (cube mass, frictions, gains...) that the state does
not show. Members trained on the same windows agree even where the physics differs from training (their spread is
only their initializations' disagreement); members trained on different envs have seen different draws and
extrapolate differently, so their spread measures what the data does not pin down.

The training envs are dealt to the ``K`` members (shuffled with the run's seed, round-robin: sizes differ by at most
one, every env used once), each member's episodes are served as one part of a :class:`Parts` (a global batch of
``B`` windows is ``B / K`` windows of each member's envs, in member order), and :class:`MemberSplitLoss` trains
member ``k`` on the ``k``-th slice of the batch only. Validation scores the whole ensemble on every validation window.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np
from torch import nn

from ..distributed.partition import Parts
from ..models.world_model import EnsembleWorldModel
from .objectives import world_model_loss
from .sequences import Sequences, SequenceTable

ENSEMBLE_SPLITS = ("none", "env")
"""``train.ensemble_split`` values: every member on every window, or each member on its own training envs."""


def member_envs(env_ids: list[int], members: int, seed: int) -> list[list[int]]:
    """The training envs of each of ``members`` members: ``env_ids`` shuffled with ``seed`` and dealt round-robin,
    each list sorted (disjoint, every env in exactly one).

    Raises:
        ValueError: fewer envs than members (a member would train on nothing).
    """
    envs = sorted(set(int(e) for e in env_ids))
    if len(envs) < members:
        raise ValueError(
            f"train.ensemble_split=env needs at least one training env per member: {len(envs)} envs for "
            f"{members} members (use more envs, a smaller model.ensemble, or train.ensemble_split=none)"
        )
    order = np.random.default_rng(seed).permutation(np.asarray(envs, dtype=np.int64)).tolist()
    return [sorted(order[k::members]) for k in range(members)]


def member_parts(table: SequenceTable, members: int, seed: int) -> Parts:
    """The training episodes of ``table`` as one part per member, each part the episodes of that member's envs
    (:func:`member_envs`); ``Parts.indices`` are the member numbers."""
    records = table.reader.episodes
    env_of = {i: records[i].env_id for i in table.episode_ids}
    if any(env < 0 for env in env_of.values()):
        raise ValueError(
            f"the manifest of {table.reader.dataset_dir} records no env id per episode (an older dataset): regenerate "
            "it with wam generate, or use train.ensemble_split=none"
        )
    envs = member_envs(list(env_of.values()), members, seed)
    tables = []
    for own in envs:
        own_set = set(own)
        episodes = [i for i, env in env_of.items() if env in own_set]
        tables.append(SequenceTable(table.reader.dataset_dir, table.schema, episodes, action_keys=table.action_keys))
    return Parts(tables, list(range(members)), members)


def split_parts(cfg, model: nn.Module, parts: Parts, distributed: bool) -> Parts:
    """The trainer's training parts under ``cfg.train.ensemble_split``: unchanged for ``none``, one part per member
    for ``env``.

    Raises:
        ValueError: an unknown split, ``env`` for a model that is not an ensemble, or across several ranks.
    """
    split = cfg.train.ensemble_split
    if split not in ENSEMBLE_SPLITS:
        raise ValueError(f"unknown train.ensemble_split '{split}'; expected one of {', '.join(ENSEMBLE_SPLITS)}")
    if split == "none":
        return parts
    if not isinstance(model, EnsembleWorldModel):
        raise ValueError(
            "train.ensemble_split=env needs an ensemble world model: --model mlp, gru or transformer, --ensemble K >= 2"
        )
    if distributed or len(parts.tables) != 1:
        raise ValueError("train.ensemble_split=env runs in one process: launch without torchrun")
    members = len(model.members)
    if cfg.train.batch_size % members:
        raise ValueError(
            f"train.ensemble_split=env: train.batch_size {cfg.train.batch_size} is not a multiple of the {members} "
            "ensemble members (each member takes an equal share of every batch)"
        )
    return member_parts(parts.tables[0], members, cfg.train.seed)


def member_slice(batch: Sequences, start: int, stop: int) -> Sequences:
    """Windows ``start:stop`` of ``batch``."""
    return Sequences(**{f.name: None if getattr(batch, f.name) is None else getattr(batch, f.name)[start:stop]
                        for f in fields(Sequences)})  # fmt: skip


class MemberSplitLoss(nn.Module):
    """The loss of an ensemble whose member ``k`` trains on the ``k``-th of ``K`` equal slices of the batch (the
    windows of its own envs, as :func:`member_parts` serves them): the sum of the members' losses, and their terms'
    mean, as :func:`~wam_isaac.training.objectives.model_loss` gives for an ensemble."""

    def __init__(self, model: EnsembleWorldModel, history: int, cfg) -> None:
        super().__init__()
        self.model, self.history, self.cfg = model, history, cfg

    def forward(self, batch: Sequences):
        members = len(self.model.members)
        size = batch.batch_size
        if size % members:
            raise ValueError(f"a batch of {size} windows does not split over {members} ensemble members")
        share = size // members
        results = [
            world_model_loss(member, member_slice(batch, k * share, (k + 1) * share), self.history, self.cfg)
            for k, member in enumerate(self.model.members)
        ]
        terms = {name: sum(r[1][name] for r in results) / members for name in results[0][1]}
        return sum(r[0] for r in results), terms


def split_loss(cfg, model: nn.Module, default: nn.Module) -> nn.Module:
    """The trainer's loss module: :class:`MemberSplitLoss` under ``train.ensemble_split=env``, else ``default``."""
    if cfg.train.ensemble_split == "env":
        return MemberSplitLoss(model, cfg.train.history, cfg.train.loss)
    return default
