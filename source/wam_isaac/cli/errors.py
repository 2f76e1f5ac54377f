"""How the CLI reports bad input: one line naming what was wrong and what would be right, exit code 2."""

from __future__ import annotations


class UsageError(Exception):
    """Bad user input. The message is one line: what was wrong and what would be right."""

    exit_code = 2
