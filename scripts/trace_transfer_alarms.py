"""Where an export's surprise-monitor alarms come from under the training conditions (``wam transfer-eval``'s
``training``): the condition is run as transfer-eval runs it, with every step of the monitor logged, then the alarms are
broken down by episode length, by step of the episode and by the state term with the largest score.

usage: python scripts/trace_transfer_alarms.py EXPORT_DIR [--task WAM-Push-Cube] [--num_envs 32] [--episodes 128]
       [--seed 0] [--device cpu] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def trace(export_dir: str, task: str, num_envs: int, episodes: int, seed: int, device: str) -> tuple[dict, dict]:
    """The condition's figures and the monitor's log: ``alarm``, ``jump``, ``statistic``, ``term`` (index of the
    largest term score, -1 where nothing was judged) and ``fresh`` (a new episode's first step), each (steps, envs)."""
    from wam_isaac.export.exporter import task_env
    from wam_isaac.export.transfer import run_condition

    log = {"alarm": [], "jump": [], "statistic": [], "term": [], "fresh": []}

    def on_judged(surprise, fresh):
        scores = np.nan_to_num(surprise.term_scores, nan=-np.inf)
        log["alarm"].append(surprise.alarm)
        log["jump"].append(surprise.jump_alarm)
        log["statistic"].append(surprise.statistic)
        log["term"].append(np.where(np.isfinite(scores).any(-1), scores.argmax(-1), -1))
        log["fresh"].append(fresh)

    with task_env(task, "rsl_rl_cfg_entry_point", device, num_envs, seed) as (env, _):
        result = run_condition(env, export_dir, "training", {}, episodes, seed, on_judged=on_judged).to_dict()
    return result, {name: np.array(values) for name, values in log.items()}


def breakdown(log: dict, term_names: list[str]) -> dict:
    """Alarms by episode (length, alarmed), by step of the episode and by term."""
    alarm, fresh, statistic = log["alarm"], log["fresh"], log["statistic"]
    judged = np.isfinite(statistic)
    steps, envs = alarm.shape
    age = np.zeros((steps, envs), int)  # step of the episode
    episodes = []  # (length, alarmed, first alarm step) of every episode that ended
    for env in range(envs):
        starts = [*np.flatnonzero(fresh[:, env]), steps]
        for start, end in zip(starts[:-1], starts[1:], strict=True):
            age[start:end, env] = np.arange(end - start)
            if end < steps:
                hits = np.flatnonzero(alarm[start:end, env])
                episodes.append((int(end - start), bool(hits.size), int(hits[0]) if hits.size else None))
    lengths = np.array([e[0] for e in episodes])
    alarmed = np.array([e[1] for e in episodes])
    by_age = {}
    for low in range(0, int(age.max()) + 1, 10):
        rows = judged & (age >= low) & (age < low + 10)
        if rows.any():
            by_age[f"{low}-{low + 9}"] = {
                "judged": int(rows.sum()),
                "alarm_rate": float((alarm & rows).sum() / rows.sum()),
                "mean_statistic": float(statistic[rows].mean()),
            }
    terms = np.bincount(log["term"][log["jump"] & judged], minlength=len(term_names))
    return {
        "judged_steps": int(judged.sum()),
        "alarm_rate": float((alarm & judged).sum() / judged.sum()),
        "episodes_ended": len(episodes),
        "alarmed_episodes": [{"length": e[0], "first_alarm_step": e[2]} for e in episodes if e[1]],
        "longest_unalarmed_episode": int(lengths[~alarmed].max()) if (~alarmed).any() else None,
        "median_episode_length": float(np.median(lengths)),
        "by_episode_step": by_age,
        "jump_alarms_by_term": dict(zip(term_names, terms.tolist(), strict=True)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("export_dir")
    parser.add_argument("--task", default="WAM-Push-Cube")
    parser.add_argument("--num_envs", type=int, default=32)
    parser.add_argument("--episodes", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--json", type=Path, default=None, help="write the breakdown here")
    args = parser.parse_args(argv)
    metadata_file = Path(args.export_dir) / "metadata.json"
    if not metadata_file.is_file():
        print(f"error: {metadata_file} does not exist; expected a `wam export` directory", file=sys.stderr)
        return 2
    block = json.loads(metadata_file.read_text()).get("world_model") or {}
    if "monitor" not in block:
        print(f"error: {args.export_dir} has no calibrated monitor; export with a world model", file=sys.stderr)
        return 2
    result, log = trace(args.export_dir, args.task, args.num_envs, args.episodes, args.seed, args.device)
    report = {"condition": result, "breakdown": breakdown(log, [t["name"] for t in block["state"]["terms"]])}
    text = json.dumps(report, indent=2)
    print(text)
    if args.json is not None:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
