"""One rank of the 2-rank ``wam train`` test, started by torchrun: ``wam train <args>`` with the runner's ``learn``
wrapped to announce this rank's pid when learning starts and to save the rank's learner when it returns.

Usage: ``torchrun --nproc_per_node=2 ppo_rank_dump.py <results dir> <wam train args...>``
"""

from __future__ import annotations

import os
import sys

import torch

from wam_isaac.cli import main as wam
from wam_isaac.distributed.ppo_runner import WamRunner


def learn_then_dump(results: str):
    learn = WamRunner.learn
    rank = int(os.environ["RANK"])

    def wrapped(self, *args, **kwargs):
        print(f"[rank {rank}] pid {os.getpid()} learning", flush=True)
        learn(self, *args, **kwargs)
        alg = self.alg
        torch.save(
            {
                "preempted_at": self.preempted_at,
                "iteration": alg.iteration,
                "wam": alg.wam.state_dict(),
                "optimizer": alg.optimizer.state_dict(),
                "learning_rate": alg.learning_rate,
                "replay": alg.replay.state_dict(),
                "metrics": dict(alg.world_model_metrics),
                "log_dir": self.logger.log_dir,
            },
            os.path.join(results, f"rank{rank}.pt"),
        )

    return wrapped


if __name__ == "__main__":
    WamRunner.learn = learn_then_dump(sys.argv[1])
    wam(["train", *sys.argv[2:]])
