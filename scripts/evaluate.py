"""Cluster entry point for WAM evaluation, same flags as `wam eval`:
python scripts/evaluate.py --checkpoint RUN/checkpoints/last.pt --data DIR --out RUN/eval --task WAM-Push-Cube."""

import sys

from wam_isaac.cli import main

if __name__ == "__main__":
    main(["eval", *sys.argv[1:]])
