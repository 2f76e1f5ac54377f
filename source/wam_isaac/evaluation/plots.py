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


def plot_fidelity(result: FidelityResult, path: str | os.PathLike) -> Path:
    """Normalized RMSE against the horizon, one line per state term and the overall one (log-scaled horizon)."""
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(6, 4))
    for name, values in result.nrmse.items():
        style = {"color": "black", "linewidth": 2.5} if name == "all" else {}
        axes.plot(result.horizons, values, marker="o", label=name, **style)
    if result.ensemble_std is not None:
        axes.plot(result.horizons, result.ensemble_std["all"], "k--", label="ensemble std (all)")
    axes.set_xscale("log", base=2)
    axes.set_xticks(result.horizons, [str(k) for k in result.horizons])
    axes.set_xlabel("horizon [steps]")
    axes.set_ylabel("normalized RMSE [state std]")
    axes.set_title(f"rollout error, {result.windows} validation windows")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=8)
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
