"""Cluster entry point for labeled data generation, same flags as `wam generate`:
python scripts/generate.py --task WAM-Push-Cube --num_envs 4096 --steps 1000 --policy scripted --out DIR."""

import sys

from wam_isaac.cli import main

if __name__ == "__main__":
    main(["generate", *sys.argv[1:]])
