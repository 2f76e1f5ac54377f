"""Errors of the deploy runtime: a bad export directory, and bad input at run time."""

from __future__ import annotations


class MetadataError(ValueError):
    """An export directory that cannot be deployed: missing file, wrong schema, checksum mismatch, bad config."""


class BadObservation(ValueError):
    """An observation the policy must not act on: a missing, extra, mis-shaped, non-float or non-finite term.

    The message names the term and what was expected.
    """
