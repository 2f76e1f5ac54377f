"""The evaluation plots (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from ..models.schema import WamSchema
from .fidelity import FidelityResult


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


PREDICTOR_STYLES = {
    "model": {"color": "C0", "linewidth": 2.5, "marker": "o"},
    "copy_last": {"color": "0.4", "linestyle": "--", "marker": "s"},
    "constant_velocity": {"color": "C1", "linestyle": ":", "marker": "^"},
}


def plot_fidelity(result: FidelityResult, path: str | os.PathLike) -> Path:
    """Rollout error against the horizon, one panel per state term in its physical unit: the model, copy-last and
    constant-velocity (and the ensemble's spread), log-scaled axes; the panel title gives model / copy-last."""
    plt = _pyplot()
    table = result.table
    terms = list(table["units"])
    columns = min(3, len(terms))
    rows = -(-len(terms) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for index, term in enumerate(terms):
        ax = axes[index // columns, index % columns]
        for predictor, errors in table["error"].items():
            ax.plot(result.horizons, errors[term], label=predictor, **PREDICTOR_STYLES.get(predictor, {}))
        if result.ensemble_spread is not None:
            ax.plot(result.horizons, result.ensemble_spread[term], color="C0", alpha=0.5, label="ensemble spread")
        ratio = ", ".join(f"{v:.2f}" for v in result.headline[term])
        ax.set_title(f"{term}  (model/copy-last {ratio})", fontsize=8)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xticks(result.horizons, [str(k) for k in result.horizons])
        ax.set_ylabel(f"RMS error [{table['units'][term].split(' ')[0]}]")
        ax.set_xlabel("horizon [steps]")
        ax.grid(alpha=0.3)
    for index in range(len(terms), rows * columns):
        axes[index // columns, index % columns].axis("off")
    axes[0, 0].legend(fontsize=7)
    figure.suptitle(f"rollout error per state term, {result.windows} windows")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)


def trajectory_channels(schema: WamSchema) -> list[tuple[str, int]]:
    """(label, state index) of the plotted channels: the object's x and y (``*_pos`` terms other than joints) and
    the first joint angle, whichever exist."""
    channels = []
    for term in schema.state_slices():
        if term.name.endswith("_pos") and term.name != "joint_pos" and term.size >= 2 and not channels:
            channels += [(f"{term.name}[x] [m]", term.start), (f"{term.name}[y] [m]", term.start + 1)]
    joints = [term for term in schema.state_slices() if term.name == "joint_pos"]
    if joints:
        channels.append(("joint_pos[0] [rad]", joints[0].start))
    return channels or [(f"state[{i}]", i) for i in range(min(3, schema.state_dim))]


def plot_trajectories(result: FidelityResult, schema: WamSchema, path: str | os.PathLike, windows: int = 3) -> Path:
    """Predicted (dashed) against true (solid) trajectories of a few windows spread over the evaluated ones."""
    plt = _pyplot()
    channels = trajectory_channels(schema)
    picks = torch.linspace(0, result.windows - 1, min(windows, result.windows)).round().long().tolist()
    figure, axes = plt.subplots(len(channels), 1, figsize=(7, 2.2 * len(channels)), sharex=True, squeeze=False)
    steps = torch.arange(result.true.shape[1])
    for row, (label, index) in enumerate(channels):
        ax = axes[row, 0]
        for color, window in zip(("C0", "C1", "C2", "C3", "C4"), picks, strict=False):
            ax.plot(steps, result.true[window, :, index], color=color, label=f"window {window} true")
            ax.plot(steps, result.predicted[window, :, index], "--", color=color, label=f"window {window} predicted")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
    axes[0, 0].legend(fontsize=7, ncol=2)
    axes[-1, 0].set_xlabel("steps after the last true step")
    figure.suptitle("predicted (dashed) vs true (solid)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return Path(path)
