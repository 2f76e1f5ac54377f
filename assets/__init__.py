"""Assets authored by wam_isaac: USD files (``usd/``) and the code that builds them (``builders/``).

Nothing here is downloaded: every robot is written by :mod:`wam_isaac_assets.builders` and shipped in ``usd/``.
Rebuild with ``python -m wam_isaac_assets`` (the output is byte-identical when the builders did not change).
"""

from __future__ import annotations

from pathlib import Path

USD_DIR = Path(__file__).resolve().parent / "usd"
"""Directory holding the built ``.usda`` files."""


def usd_path(name: str) -> str:
    """Absolute path of the asset ``name`` (e.g. ``"cartpole"``); raises if it was never built."""
    path = USD_DIR / f"{name}.usda"
    if not path.is_file():
        raise FileNotFoundError(f"asset '{name}' not found at {path}; build it with: python -m wam_isaac_assets")
    return str(path)
