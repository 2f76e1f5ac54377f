"""``wam bench``: run the benchmarks in ``bench/`` and print one JSON line per figure.

Each figure is ``{"name", "value", "unit", "target", ...}``; ratios are measured side by side in one run, since
absolute times drift on a shared machine.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

from .errors import UsageError

BENCH_DIR = Path(__file__).resolve().parents[3] / "bench"
"""The repository's ``bench/`` folder (benchmarks run from a source checkout)."""


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run benchmarks, print JSON lines", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (file names in bench/ without .py; default all)")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    parser.add_argument("--device", default=None, help="device: cpu, cuda or cuda:N (default: cuda:0 if available)")
    parser.set_defaults(run=run)


def available() -> list[str]:
    """Benchmark names: the ``bench/*.py`` files defining ``run(args)``."""
    if not BENCH_DIR.is_dir():
        return []
    return sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def child_result(code: str, argv: list[str], label: str, timeout: float = 1800) -> dict:
    """Run ``python -c code *argv`` in a fresh process (Isaac Lab holds one simulation per process) and return the
    JSON object of the last stdout line starting with ``RESULT ``.

    Raises:
        RuntimeError: the process failed or printed no result; the message names ``label`` and ends with the last
            three lines of its stderr (or stdout).
    """
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=timeout)
    lines = [line for line in result.stdout.splitlines() if line.startswith("RESULT ")]
    if result.returncode != 0 or not lines:
        tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
        raise RuntimeError(f"{label}: benchmark process failed: {' | '.join(tail)}")
    return json.loads(lines[-1][len("RESULT ") :])


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from .common import resolve_device

    if extra:
        raise UsageError(f"unexpected arguments: {' '.join(extra)}")
    names = args.names or available()
    if not names:
        raise UsageError(f"no benchmarks found in {BENCH_DIR} (wam bench runs from a source checkout)")
    unknown = [name for name in names if name not in available()]
    if unknown:
        raise UsageError(f"unknown benchmark '{unknown[0]}'; available: {', '.join(available())}")
    args.device = resolve_device(args.device)
    for name in names:
        spec = importlib.util.spec_from_file_location(f"wam_bench_{name}", BENCH_DIR / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
        spec.loader.exec_module(module)
        for figure in module.run(args):
            print(json.dumps(figure), flush=True)
    return 0
