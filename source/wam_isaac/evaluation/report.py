"""The evaluation report: ``eval.json`` (written atomically) and the summary table ``wam eval`` prints."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

REPORT_NAME = "eval.json"
"""File name of the report in the output directory."""
PLOT_NAMES = ("fidelity_vs_horizon.png", "trajectories.png")
"""The plots written beside the report (the only other files ``wam eval`` writes or replaces)."""


def write_report(out_dir: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``<out_dir>/eval.json``: a temp file in the same directory, fsync, rename (a crash
    leaves the old report or the new one). Non-finite numbers become ``null`` (strict JSON)."""
    path = Path(out_dir) / REPORT_NAME
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.tmp")
    with open(temp, "w") as file:
        json.dump(_finite(report), file, indent=2, allow_nan=False)
        file.write("\n")
        file.flush()
        os.fsync(file.fileno())
    os.replace(temp, path)
    return path


def _finite(value):
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _number(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.1e}"


def summary_table(report: dict[str, Any]) -> str:
    """A few lines: the fidelity per horizon, the physics checks pred vs true, the closed-loop figures."""
    lines = []
    fidelity = report.get("fidelity")
    if fidelity is not None:
        lines += fidelity_lines(fidelity)
    if report.get("visual_fidelity") is not None:
        lines += visual_lines(report["visual_fidelity"], report.get("state_readout"))
    physics = report.get("physics", {})
    if not physics.get("applicable"):
        lines.append(f"physics: not applicable ({physics.get('reason', '')})")
    else:
        lines.append(f"physics: violation rate{'pred':>13}{'true':>9}   (checked states/steps pred, true)")
        for name, check in physics["checks"].items():
            if not check.get("applicable", True):
                lines.append(f"  {name:<22} not applicable ({check['reason']})")
                continue
            pred, true = check["pred"], check["true"]
            lines.append(
                f"  {name:<22}{_number(pred['rate']):>9}{_number(true['rate']):>9}   ({pred['count']}, {true['count']})"
            )
    loop = report.get("closed_loop", {})
    if not loop.get("applicable"):
        lines.append(f"closed loop: not applicable ({loop.get('reason', '')})")
    else:
        lines.append(
            f"closed loop: {loop['episodes']} episodes, success {_number(loop['success_rate'])}, return "
            f"{_number(loop['mean_return'])}, length {_number(loop['mean_episode_length'], 1)}, smoothness "
            f"{_number(loop['action_smoothness'])}, within limits {_number(loop['limit_compliance'])}"
        )
    return "\n".join(lines)


def fidelity_lines(fidelity: dict[str, Any]) -> list[str]:
    """The fidelity table: per state term, the error of the model and of the baselines in physical units at each
    horizon, the ratio model / copy-last (the headline), the ensemble's spread, a rotation's yaw / tilt split; then
    the normalized errors."""
    horizons = fidelity["horizons"]
    header = "".join(f"{'@' + str(k):>10}" for k in horizons)
    lines = [
        f"fidelity on {fidelity['windows']} windows from {fidelity['episodes']} episodes "
        f"({fidelity['skipped_episodes']} too short): rollout error per state term, in physical units",
        f"  {'term [unit]':<26}{'predictor':<19}{header}",
    ]
    spread = fidelity.get("ensemble_spread") or {}
    for term, unit in fidelity["units"].items():
        label = f"{term} [{unit.split(' ')[0]}]"
        for predictor, terms in fidelity["error"].items():
            lines.append(f"  {label:<26}{predictor:<19}" + "".join(f"{_number(v, 4):>10}" for v in terms[term]))
            label = ""
        if term in spread:
            lines.append(f"  {'':<26}{'ensemble spread':<19}" + "".join(f"{_number(v, 4):>10}" for v in spread[term]))
        ratio = fidelity["model_over_copy_last"][term]
        lines.append(f"  {'':<26}{'model/copy-last':<19}" + "".join(f"{_number(v):>10}" for v in ratio))
        lines += rotation_split_lines(term, (fidelity.get("rotation_split") or {}).get(term))
    overall = fidelity["model_over_copy_last"]["all"]
    lines.append(f"  {'all terms':<26}{'model/copy-last':<19}" + "".join(f"{_number(v):>10}" for v in overall))
    lines.append("  normalized error (over each term's typical one-step change, mean over terms):")
    for predictor, terms in fidelity["normalized"].items():
        lines.append(f"  {'':<26}{predictor:<19}" + "".join(f"{_number(v):>10}" for v in terms["all"]))
    return lines


def rotation_split_lines(term: str, split: dict[str, dict[str, list[float]]] | None) -> list[str]:
    """A rotation term's yaw and tilt rows [rad]: each predictor's error and the model / copy-last ratio."""
    lines = []
    for part, errors in (split or {}).items():
        label = f"{term} {part} [rad]"
        for predictor, values in errors.items():
            lines.append(f"  {label:<26}{predictor:<19}" + "".join(f"{_number(v, 4):>10}" for v in values))
            label = ""
        if "model" in errors and "copy_last" in errors:
            pairs = zip(errors["model"], errors["copy_last"], strict=True)
            ratio = [m / c if c > 0 else math.nan for m, c in pairs]
            lines.append(f"  {'':<26}{'model/copy-last':<19}" + "".join(f"{_number(v):>10}" for v in ratio))
    return lines


def visual_lines(visual: dict[str, Any], readout: dict[str, Any] | None) -> list[str]:
    """A pixel model's table: PSNR and SSIM of the model and copy-last-frame per horizon; with a state read-out, the
    imagined states' error per term beside copy-last-state."""
    horizons = list(visual["horizons"])
    header = "".join(f"{'@' + h:>10}" for h in horizons)
    lines = [
        f"visual fidelity on {visual['windows']} windows from {visual['episodes']} episodes",
        f"  {'':<26}{header}",
    ]
    for label, key in (("PSNR [dB] model", "psnr"), ("PSNR [dB] copy-last", "copy_last_psnr"),
                       ("SSIM model", "ssim"), ("SSIM copy-last", "copy_last_ssim")):  # fmt: skip
        lines.append(f"  {label:<26}" + "".join(f"{_number(visual['horizons'][h][key], 4):>10}" for h in horizons))
    for key in ("psnr", "ssim") if "gate_open" in visual else ():
        label = f"{key.upper()} gate held open"
        lines.append(f"  {label:<26}" + "".join(f"{_number(visual['gate_open'][h][key], 4):>10}" for h in horizons))
    if readout is not None:
        lines.append("  state read-out of imagined latents, mean error per term (model / copy-last state):")
        for term, errors in readout["model"].items():
            pairs = zip(errors, readout["copy_last"][term], strict=True)
            lines.append(f"  {term:<26}" + "".join(f"{_number(m, 3) + '/' + _number(c, 3):>16}" for m, c in pairs))
    return lines
