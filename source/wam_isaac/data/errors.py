"""Errors of the dataset package; each message is one line saying what was wrong and what would be right."""

from __future__ import annotations


class DatasetError(Exception):
    """Base class of the dataset package's errors."""


class DatasetExistsError(DatasetError):
    """The output directory already holds files and ``overwrite`` was not set."""


class DatasetNotWritableError(DatasetError):
    """The output directory cannot be created or written to."""


class WriterError(DatasetError):
    """The background writer failed; the cause is chained."""


class ManifestError(DatasetError):
    """A dataset's manifest is missing, malformed, or does not match the request (unknown key or episode)."""
