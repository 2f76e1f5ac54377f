"""Cluster entry point for offline WAM training, same flags as `wam train-model`:

    python scripts/train_model.py --data DIR --model joint --history 8 --forecast 16 --epochs 50 --out RUN \
        --device cuda:0
"""

import sys

from wam_isaac.cli import main

if __name__ == "__main__":
    main(["train-model", *sys.argv[1:]])
