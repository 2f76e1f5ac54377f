"""What each rank of the joint-WAM PPO tests runs (a module of its own: spawned processes import it). The env is the
WamPPO unit tests' synthetic pusher (:mod:`wam_ppo_synthetic`), each rank with its own seed."""

from __future__ import annotations

import os

import torch
from wam_ppo_synthetic import SyntheticPushEnv, collect, runner_cfg

from wam_isaac.distributed.context import DistContext

WORLD_SIZE = 2
NUM_ENVS = 8
"""Envs per rank."""
IMAGINATION = {"enabled": True, "warmup_iterations": 1, "num_envs": 16, "horizon": 3, "ensemble_size": 2}
"""Imagination from the second iteration on (its extra dynamics heads are parameters every rank must agree on)."""
WORLD_MODEL = {"steps": 2, "batch_size": 16, "history": 4, "forecast": 4, "heldout_env_fraction": 0.25}
WORLD_MODEL["eval_horizon"] = 4
"""World-model windows of 4 + 4 steps, held-out errors 4 steps ahead (windows fit in the 20-step episodes)."""


def join(rank: int) -> DistContext:
    """Rank ``rank`` of a torchrun-like job: the environment variables rsl-rl's runner reads, and the Gloo group."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(WORLD_SIZE))
    torch.set_num_threads(1)
    context = DistContext(rank=rank, world_size=WORLD_SIZE, local_rank=rank)
    context.init("cpu")
    return context


def snapshot(alg) -> dict:
    """Everything of ``alg`` that must be identical on every rank, and the rank's own replay."""
    return {
        "wam": {k: v.clone() for k, v in alg.wam.state_dict().items()},
        "ensemble": {k: v.clone() for k, v in alg.ensemble.state_dict().items()} if alg.ensemble else {},
        "critic": {k: v.clone() for k, v in alg.critic.state_dict().items()},
        "optimizer": alg.optimizer.state_dict(),
        "learning_rate": alg.learning_rate,
        "iteration": alg.iteration,
        "metrics": dict(alg.world_model_metrics),
        "replay": alg.replay.state_dict(),
    }


def run_rank(rank: int, iterations: int, results: str) -> None:
    """Rank ``rank`` of 2: :func:`runner_iterations`, then :func:`one_update`, in one Gloo group."""
    context = join(rank)
    try:
        runner_iterations(rank, iterations, results)
        one_update(rank, results)
    finally:
        context.shutdown()


def runner_iterations(rank: int, iterations: int, results: str) -> None:
    """:class:`WamRunner` (its Gloo setup finds the group joined) for ``iterations`` iterations of WamPPO with
    imagination; each rank starts from other random parameters (rank 0's are broadcast) and its own env seed."""
    from wam_isaac.distributed.ppo_runner import WamRunner

    torch.manual_seed(100 + rank)
    env = SyntheticPushEnv(num_envs=NUM_ENVS, episode_length=20, seed=rank)
    cfg = runner_cfg(imagination=IMAGINATION, world_model=WORLD_MODEL)
    runner = WamRunner(env, cfg, log_dir=None, device="cpu")
    assert runner.alg.is_multi_gpu and runner.alg.gpu_world_size == WORLD_SIZE
    runner.learn(iterations)
    from wam_isaac.training.wam_ppo_world_model import WorldModelSteps

    local = WorldModelSteps.heldout_errors(runner.alg)  # this rank's own held-out figures (no reduction)
    torch.save({**snapshot(runner.alg), "local_metrics": local}, os.path.join(results, f"rank{rank}.pt"))


def storage_state(alg) -> dict:
    """The rollout storage's tensors (each (T, N, ...); the distribution parameters a tuple of them)."""
    st = alg.storage
    fields = ("rewards", "actions", "dones", "values", "actions_log_prob")
    return {"observations": st.observations.clone(), "distribution_params": tuple(p.clone() for p in
            st.distribution_params), **{name: getattr(st, name).clone() for name in fields}}  # fmt: skip


def one_update(rank: int, results: str) -> None:
    """The same initial WamPPO on every rank (seed 0), one rollout of the rank's own env (seed ``rank``), one update
    (one epoch of one minibatch: the whole rollout); saves the rollout, the replay and the result."""
    env, alg = equivalence_setup(seed=rank, num_envs=NUM_ENVS, multi_gpu=True)
    alg.broadcast_parameters()
    last = collect(alg, env)
    rollout = {"storage": storage_state(alg), "last": last.clone(), "replay": alg.replay.state_dict()}
    losses = alg.update()
    torch.save({**rollout, **snapshot(alg), "losses": losses}, os.path.join(results, f"update{rank}.pt"))


def equivalence_setup(seed: int, num_envs: int, multi_gpu: bool):
    """An env and a WamPPO whose update is PPO's on the shared trunk (world model off) with an MLP trunk, one epoch
    of one minibatch, a fixed learning rate (the adaptive schedule would read the KL of the minibatch before its step,
    zero up to rounding); the same initial parameters whatever ``seed`` (the env's)."""
    env = SyntheticPushEnv(num_envs=num_envs, episode_length=10, seed=seed)
    torch.manual_seed(0)
    cfg = runner_cfg(
        world_model_weight=0.0,
        num_learning_epochs=1,
        num_mini_batches=1,
        schedule="fixed",
        wam_model={"trunk": "mlp", "hidden": 32, "layers": 2, "head_hidden": 32},
    )
    cfg["multi_gpu"] = {"global_rank": seed, "local_rank": seed, "world_size": WORLD_SIZE} if multi_gpu else None
    from wam_isaac.training.wam_ppo import WamPPO

    alg = WamPPO.construct_algorithm(env.get_observations(), env, cfg, "cpu")
    torch.manual_seed(1000 + seed)  # the rollout's action noise: the rank's own
    return env, alg
