"""Joint-WAM PPO on 2 Gloo ranks (spawned processes, CPU, the synthetic pusher): rsl-rl's runner as ``wam train``
runs it keeps every parameter, normalizer, optimizer moment and the learning rate of the two ranks identical while
each rank's replay holds its own envs; and one update of 2 ranks of N envs is the update of one process of 2N envs
holding both rollouts."""

from __future__ import annotations

import socket

import pytest
import torch
import torch.multiprocessing as mp
from ppo_rank_workers import NUM_ENVS, WORLD_SIZE, equivalence_setup, run_rank

UPDATE_TOLERANCE = 1.0e-6
"""Largest absolute difference of a parameter after one update, 2 ranks vs 1 process: the ranks average two
half-batch gradients (and all-reduce the advantages' moments) where one process sums the whole batch, the same sums
in another order (float32); one Adam step of lr 1e-3 moves each parameter by at most ~1e-3."""


ITERATIONS = 3
"""Runner iterations on the 2 ranks (imagination joins from the second)."""


@pytest.fixture(scope="module")
def ranks_dir(tmp_path_factory):
    """What 2 spawned Gloo ranks saved (one job for both tests: the processes' start-up is most of the cost)."""
    results = tmp_path_factory.mktemp("ranks")
    with socket.socket() as probe, pytest.MonkeyPatch.context() as patch:
        probe.bind(("127.0.0.1", 0))
        patch.setenv("MASTER_ADDR", "127.0.0.1")
        patch.setenv("MASTER_PORT", str(probe.getsockname()[1]))
        probe.close()
        mp.start_processes(run_rank, args=(ITERATIONS, str(results)), nprocs=WORLD_SIZE, start_method="spawn")
    return results


def assert_same(first: dict, second: dict, what: str) -> None:
    assert first.keys() == second.keys(), what
    for name, value in first.items():
        assert torch.equal(value, second[name]), f"{what} {name} differs between the ranks"


def test_two_ranks_keep_the_joint_wam_identical_and_their_own_replays(ranks_dir):
    ranks = [torch.load(ranks_dir / f"rank{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]
    first, second = ranks
    assert first["iteration"] == second["iteration"] == ITERATIONS
    for part in ("wam", "ensemble", "critic"):
        assert_same(first[part], second[part], part)
    assert first["ensemble"], "imagination's extra dynamics heads must be compared"
    # the normalizers were fitted on the first rollout (both ranks' replays), not left at their defaults
    state_std = first["wam"]["normalizers.state.std"]
    assert not torch.equal(state_std, torch.ones_like(state_std))
    # the optimizer's moments and step counts, and the adaptive learning rate, are the same
    states = [r["optimizer"]["state"] for r in ranks]
    assert states[0].keys() == states[1].keys() and len(states[0]) > 0
    for index, state in states[0].items():
        assert_same(state, states[1][index], f"optimizer state {index}")
    assert first["learning_rate"] == second["learning_rate"]
    assert first["optimizer"]["param_groups"][0]["lr"] == first["learning_rate"]
    # the held-out prediction errors were reduced over both ranks' held-out windows
    assert first["metrics"] == second["metrics"]
    windows = [r["local_metrics"]["WorldModel/heldout_windows"] for r in ranks]
    assert first["metrics"]["WorldModel/heldout_windows"] == sum(windows) and min(windows) > 0
    for name, value in first["metrics"].items():  # RMS over both ranks' windows; the ratio weighted by windows
        local = [r["local_metrics"][name] for r in ranks]
        if name.startswith("WorldModel/error@"):
            expected = ((windows[0] * local[0] ** 2 + windows[1] * local[1] ** 2) / sum(windows)) ** 0.5
            assert value == pytest.approx(expected, rel=1e-9) and min(local) < value < max(local), name
        elif name.startswith("WorldModel/ratio@"):
            assert value == pytest.approx((windows[0] * local[0] + windows[1] * local[1]) / sum(windows)), name
    # each rank's replay holds its own envs' transitions (other seeds): same shape, other contents
    replays = [r["replay"] for r in ranks]
    size = ITERATIONS * 8  # steps per iteration
    assert replays[0]["size"] == replays[1]["size"] == size
    assert replays[0]["states"].shape == replays[1]["states"].shape == (size, NUM_ENVS, replays[0]["states"].shape[-1])
    assert not torch.allclose(replays[0]["states"], replays[1]["states"])
    assert replays[0]["dones"].any() and replays[1]["dones"].any()  # episode ends inside the compared windows


def test_one_update_of_two_ranks_is_the_update_of_one_process_with_both_rollouts(ranks_dir):
    ranks = [torch.load(ranks_dir / f"update{rank}.pt", weights_only=False) for rank in range(WORLD_SIZE)]
    assert_same(ranks[0]["wam"], ranks[1]["wam"], "wam")
    # one process holding both ranks' rollouts (its envs 0-7 are rank 0's, 8-15 rank 1's) and replays
    _, alg = equivalence_setup(seed=0, num_envs=WORLD_SIZE * NUM_ENVS, multi_gpu=False)
    storage = alg.storage
    for name in ("observations", "rewards", "actions", "dones", "values", "actions_log_prob"):
        setattr(storage, name, torch.cat([r["storage"][name] for r in ranks], dim=1))
    storage.distribution_params = tuple(
        torch.cat(parts, dim=1) for parts in zip(*(r["storage"]["distribution_params"] for r in ranks), strict=True)
    )
    storage.step = storage.num_transitions_per_env
    replays = [r["replay"] for r in ranks]
    merged = {k: torch.cat([r[k] for r in replays], dim=1) if torch.is_tensor(v) else v for k, v in replays[0].items()}
    alg.replay.load_state_dict(merged)
    with torch.inference_mode():
        alg.compute_returns(torch.cat([r["last"] for r in ranks], dim=0))
    losses = alg.update()
    assert losses["value"] > 0
    reference = alg.wam.state_dict()
    initial = equivalence_setup(seed=0, num_envs=NUM_ENVS, multi_gpu=False)[1].wam.state_dict()
    moved = 0
    for name, value in reference.items():
        if "normalizers" in name:  # fitted on both replays: float64 moments, the same up to rounding
            torch.testing.assert_close(ranks[0]["wam"][name], value, rtol=1e-6, atol=1e-7, msg=name)
        else:
            torch.testing.assert_close(ranks[0]["wam"][name], value, rtol=0, atol=UPDATE_TOLERANCE, msg=name)
            moved = max(moved, float((value - initial[name]).abs().max()))
    assert moved > 100 * UPDATE_TOLERANCE, moved  # not vacuous: the update moved the parameters
