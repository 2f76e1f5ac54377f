"""The ``wam`` command line: Isaac Lab's flag conventions (``--task``, ``--num_envs``, ``--device``, ``--seed``,
``--max_iterations``) plus Hydra overrides (``env.x=...``, ``agent.x=...``, ``presets=...``).

Subcommands are small modules of this package, each with ``add_parser(subparsers)`` and ``run(args, extra)``.
Bad input ends in a one-line ``wam: error: ...`` and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import sys

from .errors import UsageError

SUBCOMMANDS = (
    "tasks",
    "train",
    "play",
    "pipeline",
    "dagger",
    "generate",
    "inspect",
    "export-dataset",
    "export-video",
    "train-model",
    "eval",
    "train-pixel",
    "export",
    "transfer-eval",
    "bench",
)
"""Subcommand modules of this package, in the order ``wam --help`` lists them."""


class OneLineErrorParser(argparse.ArgumentParser):
    """An argument parser whose errors are one line (``<prog>: error: <message>``, exit 2), without the usage."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The ``wam`` argument parser with every subcommand registered."""
    import importlib

    parser = OneLineErrorParser(prog="wam", description="World Action Models for Isaac Lab.")
    subparsers = parser.add_subparsers(
        dest="command", metavar="<command>", required=True, parser_class=OneLineErrorParser
    )
    for name in SUBCOMMANDS:
        importlib.import_module(f"{__name__}.{name.replace('-', '_')}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``wam`` console script."""
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    try:
        code = args.run(args, extra)
    except UsageError as error:
        print(f"wam {args.command}: error: {error}", file=sys.stderr)
        raise SystemExit(error.exit_code) from None
    except BrokenPipeError:
        # the reader of the output went away (`wam inspect D | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141) from None
    raise SystemExit(code or 0)
