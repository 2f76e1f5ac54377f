"""Rebuild every asset into ``assets/usd/``: ``python -m wam_isaac_assets [--out DIR]``."""

from __future__ import annotations

import argparse

from . import USD_DIR
from .builders import build_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=str(USD_DIR), help="output directory (default: the package's usd/)")
    args = parser.parse_args()
    for path in build_all(args.out):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
