"""Errors of ``wam export``."""

from __future__ import annotations


class ExportError(ValueError):
    """A checkpoint or run that cannot be exported, or an export that failed validation. One line: what is wrong
    and what would be right."""
