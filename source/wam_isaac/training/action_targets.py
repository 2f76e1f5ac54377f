"""Behaviour-cloning targets other than the executed actions: DAgger's expert labels (``train.action_target=expert``).

A dataset made with ``wam generate --expert_labels`` holds, beside the executed ``actions``, the scripted expert's
noise-free action on every recorded state (``expert_actions``). Trained on them, the action head imitates the expert
on the states the behaviour policy (a learner, noisy, or mixed with the expert) visited, while the world model and the
previous-action inputs keep the executed actions (what happened).

:class:`ExpertTargetTable` serves the expert actions beside the executed ones: its blocks' action column is the two
side by side, ``(rows, 2A)``, executed first, so that every window, batch and concatenation of parts carries both;
:func:`with_action_targets` splits them into :class:`TargetedSequences` where the trainer consumes a batch.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from ..data.errors import ManifestError
from ..data.reader import DatasetReader
from ..models.schema import ACTION_KEY
from .sequences import Sequences, SequenceTable

EXPERT_ACTION_KEY = "expert_actions"
"""Dataset key of the expert's action labels (written by ``wam generate --expert_labels``)."""

ACTION_TARGETS = ("executed", "expert")
"""What the action head is trained on: the executed ``actions``, or the ``expert_actions`` labels."""


@dataclass
class TargetedSequences(Sequences):
    """:class:`Sequences` whose behaviour-cloning targets are not the executed actions."""

    action_targets: torch.Tensor | None = None
    """The action head's targets, (B, T, A) (the expert's labels; zeros on final rows, which are masked)."""

    def to(self, device: torch.device | str) -> TargetedSequences:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        return TargetedSequences(**{name: None if v is None else v.to(device) for name, v in values.items()})


def action_targets(batch: Sequences) -> torch.Tensor:
    """The behaviour-cloning targets of ``batch``: its ``action_targets`` if it has them, else its executed actions."""
    targets = getattr(batch, "action_targets", None)
    return batch.actions if targets is None else targets


class ExpertTargetTable(SequenceTable):
    """A :class:`SequenceTable` whose action column is ``[executed, expert]`` side by side, (rows, 2A).

    Raises:
        ManifestError: the dataset has no ``expert_actions`` key, or it differs in shape from ``actions``.
    """

    def __init__(self, dataset_dir, schema, episode_ids=None, **kwargs) -> None:
        check_expert_labels(DatasetReader(dataset_dir).manifest, dataset_dir)
        super().__init__(dataset_dir, schema, episode_ids, action_keys=(ACTION_KEY, EXPERT_ACTION_KEY), **kwargs)


def check_expert_labels(manifest: dict, dataset_dir) -> None:
    """Raise a :class:`ManifestError` unless the dataset holds expert labels shaped like its actions."""
    keys = manifest["keys"]
    if EXPERT_ACTION_KEY not in keys:
        raise ManifestError(
            f"dataset {dataset_dir} has no '{EXPERT_ACTION_KEY}' key: generate it with wam generate --expert_labels, "
            "or train on the executed actions (train.action_target=executed)"
        )
    if list(keys[EXPERT_ACTION_KEY]["shape"]) != list(keys["actions"]["shape"]):
        raise ManifestError(
            f"'{EXPERT_ACTION_KEY}' has shape {keys[EXPERT_ACTION_KEY]['shape']} in {dataset_dir}, 'actions' "
            f"{keys['actions']['shape']}: they must match"
        )


def with_action_targets(batch: Sequences, table) -> Sequences:
    """``batch`` (windows of ``table``) with its behaviour-cloning targets split off the widened action column when
    ``table`` carries them (``action_keys`` beyond the executed actions: :class:`ExpertTargetTable`); otherwise
    ``batch`` unchanged."""
    if len(table.action_keys) < 2:
        return batch
    width = table.schema.action_dim
    values = {f.name: getattr(batch, f.name) for f in fields(Sequences)}
    values["actions"] = batch.actions[..., :width]
    return TargetedSequences(**values, action_targets=batch.actions[..., width:])
