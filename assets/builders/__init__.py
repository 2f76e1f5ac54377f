"""Code that authors this project's USD assets (pxr only; no simulator needed).

Each builder module exposes ``build() -> Usd.Stage``; :func:`build_all` writes them to ``assets/usd/``.
"""

from __future__ import annotations

import importlib
from pathlib import Path

BUILDERS = ("cartpole", "cube", "pusher", "quadruped")
"""Asset names, each a module of this package with a ``build()`` function."""


def build_all(out_dir: str | Path, names: tuple[str, ...] = BUILDERS) -> list[Path]:
    """Build the assets ``names`` into ``out_dir`` as ``<name>.usda``; returns the written paths."""
    from .usd_common import save

    out = Path(out_dir)
    return [save(importlib.import_module(f"{__name__}.{name}").build(), out / f"{name}.usda") for name in names]
