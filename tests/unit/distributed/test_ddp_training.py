"""wam train-model on 2 Gloo ranks (spawned processes, CPU): parameters identical across ranks after every step,
the same loss trajectory as one process holding both ranks' parts with the same global batch, normalizers fitted on
both ranks' data, a stop signal on one rank stopping both after the same step, and a resume with 1 rank."""

from __future__ import annotations

import torch
import torch.multiprocessing as mp
from ddp_workers import WORLD_SIZE, config, global_step_losses, preempted_fit, train_steps

from wam_isaac.training.checkpoint import load_checkpoint
from wam_isaac.training.run import make_trainer

STEPS = 8
"""Gradient steps compared (an epoch of the linear dataset has 29 global batches of 32)."""
LOSS_TOLERANCE = 1.0e-4
"""Largest relative difference of a step's loss, 2 ranks vs 1 process: DDP averages the two half-batch gradients
where one process differentiates the mean over the whole batch, the same sum in another order (float32)."""
PARAMETER_TOLERANCE = 1.0e-4
"""Largest absolute difference of a parameter after the steps, 2 ranks vs 1 process (same reason)."""


def spawn(function, *args) -> None:
    mp.start_processes(function, args=args, nprocs=WORLD_SIZE, start_method="spawn", join=True)


def test_two_ranks_take_the_steps_of_one_process_with_the_same_global_batch(linear_data, tmp_path, rendezvous):
    spawn(train_steps, str(linear_data), str(tmp_path / "run"), STEPS, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]
    # each rank read its own episodes, half of the training set each
    shares = [set(r["episodes"]) for r in ranks]
    assert not shares[0] & shares[1] and len(shares[0] | shares[1]) == 32 and min(map(len, shares)) >= 14
    # identical parameters (and normalizers) on both ranks after the steps: bit for bit
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    reference = make_trainer(config(linear_data, tmp_path / "one"), log=None, num_parts=WORLD_SIZE)
    # the normalizers fitted on both ranks' data are those of one process fitting on both parts
    for name, value in reference.model.state_dict().items():
        if "normalizers" in name:
            torch.testing.assert_close(ranks[0]["state"][name], value, rtol=1e-6, atol=1e-7, msg=name)
    losses = global_step_losses(reference, STEPS)
    assert len(losses) == len(ranks[0]["losses"]) == STEPS
    torch.testing.assert_close(torch.tensor(ranks[0]["losses"]), torch.tensor(losses), rtol=LOSS_TOLERANCE, atol=0)
    # not vacuous: the steps trained the model (the loss's scale depends on train.loss.dynamics_beta: compare ratios)
    assert sum(losses[-3:]) < 0.9 * sum(losses[:3]), losses
    for name, value in reference.model.state_dict().items():
        torch.testing.assert_close(ranks[0]["state"][name], value, rtol=0, atol=PARAMETER_TOLERANCE, msg=name)


def test_a_signal_on_one_rank_stops_both_after_the_same_step_and_one_rank_resumes(linear_data, tmp_path, rendezvous):
    out = tmp_path / "run"
    spawn(preempted_fit, str(linear_data), str(out), 5, str(tmp_path))
    ranks = [torch.load(tmp_path / f"rank{rank}.pt") for rank in range(WORLD_SIZE)]
    assert [r["interrupted"] for r in ranks] == ["stop", "SIGTERM"]  # rank 0 stopped on rank 1's signal
    assert [(r["epoch"], r["batch"]) for r in ranks] == [(0, 6), (0, 6)]
    for name, value in ranks[0]["state"].items():
        assert torch.equal(value, ranks[1]["state"][name]), name
    checkpoint = load_checkpoint(out / "checkpoints" / "last.pt")  # written by rank 0 alone
    assert (checkpoint["epoch"], checkpoint["batch"], checkpoint["world_size"]) == (0, 6, 2)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt"]
    # one process continues the 2-rank run: from its parameters, the rest of epoch 1 and epoch 2
    resumed = make_trainer(config(linear_data, out), resume=checkpoint, log=None)
    for name, value in ranks[0]["state"].items():
        assert torch.equal(resumed.model.state_dict()[name], value), name
    assert resumed.batch == 6
    resumed.fit()
    assert (resumed.epoch, resumed.batch, resumed.interrupted) == (2, 0, None)
    final = load_checkpoint(out / "checkpoints" / "last.pt")
    assert final["epoch"] == 2 and final["world_size"] == 1
    assert not torch.equal(final["model"]["dynamics.net.0.weight"], ranks[0]["state"]["dynamics.net.0.weight"])
