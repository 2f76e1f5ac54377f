"""Cluster entry point for PPO training, same flags as `wam train`:
python scripts/train.py --task WAM-Quadruped-Flat --num_envs 4096 --device cuda:0 [env.x=... agent.x=...]."""

import sys

from wam_isaac.cli import main

if __name__ == "__main__":
    main(["train", *sys.argv[1:]])
