"""``wam inspect``: summarize a dataset (episodes, transitions, success rate, keys with shapes and units, the DR
ranges sampled, camera frames: count, resolution, channels, depth or not, bytes stored); ``--verify`` checks every
shard's sha256 and names the bad ones (exit code 1)."""

from __future__ import annotations

import argparse
import json
import sys

from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("inspect", help="summarize (and verify) a dataset", description=__doc__)
    parser.add_argument("dataset", help="dataset directory (holding manifest.json)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--verify", action="store_true", help="check every shard's checksum")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data import DatasetError, load_manifest, summarize, verify
    from ..data.frames import frames_summary

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    try:
        summary = summarize(args.dataset)
        summary["frames"] = frames_summary(args.dataset, load_manifest(args.dataset))
        bad = verify(args.dataset) if args.verify else []
    except (DatasetError, FileNotFoundError) as error:
        raise UsageError(f"cannot read dataset '{args.dataset}': {error}") from None
    if args.verify:
        summary["verify"] = {"ok": not bad, "bad_shards": bad}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(_text(summary))
    if bad:
        print(f"wam inspect: verify failed: bad shard(s): {', '.join(bad)}", file=sys.stderr)
        return 1
    return 0


def _text(summary: dict) -> str:
    lines = [
        f"dataset      {summary['dataset_dir']} ({summary['task_id']}, {summary['shards']} shards, "
        f"{'complete' if summary['complete'] else 'INCOMPLETE'})",
        f"episodes     {summary['episodes']} (dropped {summary['dropped_episodes']})",
        f"transitions  {summary['transitions']}",
    ]
    if summary["episodes"]:
        length = summary["episode_length"]
        lines.append(f"success rate {summary['success_rate']:.3f}")
        lines.append(f"episode len  min {length['min']}, mean {length['mean']:.1f}, max {length['max']}")
    else:  # a run killed before its first shard: nothing to average
        lines.append("success rate n/a (no episode)")
    lines.append("keys:")
    for keys in summary["keys"].values():
        for key, spec in keys.items():
            unit = f" [{spec['unit']}]" if spec.get("unit") else ""
            lines.append(f"  {key:<44} {str(tuple(spec['shape'])):<12} {spec['dtype']}{unit}")
            if spec.get("description"):
                lines.append(f"  {'':<44} {spec['description']}")
    if summary["frames"]:
        lines.append("frames:")
    for key, frames in summary["frames"].items():
        kind = "depth [mm]" if frames["depth"] else f"{frames['channels']} channel(s)"
        ratio = frames["raw_bytes"] / max(frames["stored_bytes"], 1)
        lines.append(
            f"  {key:<44} {frames['frames']} frames, {frames['width']}x{frames['height']} px, {kind}, "
            f"{frames['dtype']}, {frames['stored_bytes'] / 1e6:.2f} MB stored ({ratio:.1f}x smaller than raw)"
        )
    lines.append("DR ranges sampled:")
    for name, value in summary["dr_ranges"].items():
        lines.append(f"  {name:<44} min {value['min']}  max {value['max']}")
    if "verify" in summary:
        bad = summary["verify"]["bad_shards"]
        lines.append(f"verify       {'FAILED: ' + ', '.join(bad) if bad else 'ok'}")
    return "\n".join(lines)
