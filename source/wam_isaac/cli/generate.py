"""``wam generate``: run a task's envs under a behaviour policy and write a labeled dataset.

Every transition is labeled by the Warp label kernels and streamed to crash-safe HDF5 shards with a manifest
(``wam inspect DIR`` summarizes it). The behaviour policy is ``random``, ``scripted`` (the task's expert), the
path of an rsl-rl checkpoint or of a ``wam train-model`` joint / cascaded WAM checkpoint; ``--noise`` adds Gaussian
exploration noise to its actions.

DAgger: ``--expert_labels`` records the scripted expert's noise-free action on every state the behaviour policy saw
(key ``expert_actions``, beside the executed ``actions``); ``--beta B`` executes the expert's action instead of the
policy's with probability B per env and step; ``--append`` adds this run's episodes to the dataset in ``--out`` as a
new segment (the aggregated dataset of DAgger's rounds; ``--steps`` counts this run's steps; same task, ``--num_envs``
and overrides, and the same keys: every segment with or every one without ``--expert_labels``).

Preemption: SIGTERM (or SIGUSR1) makes the run stop stepping, write the episodes in progress (attribute
``budget_end``), publish the shard in progress and exit 0. ``--resume`` continues a killed or preempted run in the
same ``--out`` (same task, ``--num_envs``, ``--seed`` and overrides, else a one-line error, exit 2, nothing changed):
new shards, episode ids after the stored ones, the next seed of the dataset (segment ``k`` runs with ``--seed + k``),
and ``--steps`` is the size of the whole dataset: ``steps * num_envs`` transitions, of which the stored ones are
deducted (the run makes ``ceil(missing / num_envs)`` steps; a complete dataset is left as it is).

Several processes: ``--num_procs P`` (or ``torchrun --nproc_per_node=P -m wam_isaac generate ...``, the same job) runs
P ranks, each with its own ``--num_envs`` envs (on ``cuda:<LOCAL_RANK>`` on GPUs), seed ``segment seed + rank``, env
ids ``rank * num_envs + env``, its own episode-id range and its own shards in ``--out/rank_<r>/``; ``--steps`` is per
rank. The dataset's ``manifest.json`` lists every rank's shards and is published by rank 0 only after every rank
finished: if a rank fails, the job exits non-zero naming it and the manifest claims none of that run's shards;
``--resume`` (same ``--num_procs``) continues every rank from its own journal. See
:mod:`wam_isaac.distributed.generation`.
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .common import (
    add_env_args,
    check_task,
    positive_int,
    rank_context,
    resolve_device,
    simulation,
    split_overrides,
    task_env_cfg,
)
from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate a labeled dataset", description=__doc__)
    add_env_args(parser)
    parser.add_argument("--steps", type=positive_int, required=True, help="env steps (each advances all envs)")
    parser.add_argument(
        "--policy",
        required=True,
        help="random, scripted, or the path of an rsl-rl checkpoint or of a wam train-model joint / cascaded WAM",
    )
    parser.add_argument("--out", required=True, help="dataset directory (created; must be empty unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the dataset in a non-empty --out")
    parser.add_argument("--resume", action="store_true", help="continue the (killed, preempted) dataset in --out")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian exploration noise on actions")
    parser.add_argument(
        "--noise_tau", type=float, default=0.0, help="correlation time [s] of the --noise (OU process); 0: white noise"
    )
    parser.add_argument(
        "--expert_labels", action="store_true", help="record the scripted expert's action on every step (DAgger)"
    )
    parser.add_argument(
        "--beta", type=float, default=0.0, help="probability of executing the expert's action instead (DAgger mixing)"
    )
    parser.add_argument(
        "--append", action="store_true", help="add this run's --steps to the dataset in --out as a new segment"
    )
    parser.add_argument("--horizons", type=positive_int, nargs="+", default=[1, 8], help="state-delta horizons")
    parser.add_argument(
        "--episodes_per_shard", type=positive_int, default=None, help="episodes per shard (default: ~131k transitions)"
    )
    parser.add_argument(
        "--num_procs", type=positive_int, default=None, help="generator processes (ranks) on this node, via torchrun"
    )
    parser.set_defaults(run=run)


def _check_policy(spec: str, task: str) -> None:
    from ..rollout.policies import BUILTIN, has_expert

    if spec == "scripted" and not has_expert(task):
        raise UsageError(f"task {task} has no scripted expert; use --policy random or a checkpoint path")
    if spec not in BUILTIN and not Path(spec).is_file():
        raise UsageError(f"unknown policy '{spec}'; expected random, scripted or the path of a checkpoint file")


def _check_dagger(args: argparse.Namespace) -> None:
    """Refuse expert labels or mixing on a task without an expert, a beta outside [0, 1], and ``--append`` beside
    ``--resume`` / ``--overwrite`` or with several processes."""
    from ..rollout.policies import has_expert

    if not 0.0 <= args.beta <= 1.0:
        raise UsageError(f"--beta must be in [0, 1] (the probability of the expert's action), got {args.beta}")
    wanted = "--expert_labels" if args.expert_labels else "--beta" if args.beta > 0 else None
    if wanted and not has_expert(args.task):
        raise UsageError(f"{wanted} needs a scripted expert and task {args.task} has none")
    if args.append and (args.resume or args.overwrite):
        raise UsageError("--append adds a segment to the dataset in --out: pass it without --resume and --overwrite")
    if args.append and args.num_procs is not None and args.num_procs > 1:
        raise UsageError("--append runs as one process: drop --num_procs")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data import DatasetError, check_out_dir

    overrides = split_overrides(extra)
    check_task(args.task)
    _check_policy(args.policy, args.task)
    if args.noise < 0:
        raise UsageError(f"--noise must be >= 0, got {args.noise}")
    if args.noise_tau < 0:
        raise UsageError(f"--noise_tau must be >= 0 s (0: white noise), got {args.noise_tau}")
    device = resolve_device(args.device)
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the dataset in --out, --overwrite replaces it: pass one of them")
    _check_dagger(args)
    context = rank_context(args.num_procs)
    if args.append and context.distributed:
        raise UsageError("--append runs as one process, not under torchrun")
    try:
        if not args.resume and not args.append and context.is_main:
            check_out_dir(args.out, args.overwrite)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    _check_resume(args, context)
    if args.num_procs is not None and args.num_procs > 1:
        from ..distributed.launch import launch

        consequence = f"; {args.out}/manifest.json lists none of this run's shards, --resume continues every rank"
        return launch(args.num_procs, _rank_argv(args, extra), consequence)
    context.init(device, backend="gloo")  # the ranks exchange only small objects: Gloo on GPUs too
    try:
        code = generate(args, overrides, context.device(device), context)
        context.barrier()  # leave the group together: a rank tearing Gloo down while another still uses it aborts
        return code
    finally:
        context.shutdown()


def _check_resume(args: argparse.Namespace, context) -> None:
    """Refuse, before any process starts, to resume a dataset of another task, or with another number of processes
    than it was written with (its journals, seeds and episode-id ranges are per rank)."""
    from ..data import DatasetError, load_manifest
    from ..data.manifest import MANIFEST_NAME

    if not (args.resume or args.append) or not (Path(args.out) / MANIFEST_NAME).exists():
        return
    try:
        manifest = load_manifest(args.out)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    if manifest["task_id"] != args.task:
        raise UsageError(f"{args.out} holds task {manifest['task_id']}, not {args.task}: resume with --task "
                         f"{manifest['task_id']}")  # fmt: skip
    segments = manifest["segments"]
    written = segments[-1].get("ranks", 1) if segments else None
    ranks = context.world_size if context.distributed else (args.num_procs or 1)
    if written is not None and written != ranks:
        raise UsageError(f"{args.out} was generated by {written} process(es): resume it with --num_procs {written}")


def _rank_argv(args: argparse.Namespace, extra: list[str]) -> list[str]:
    """The command line of one rank of ``--num_procs``: this one without it."""
    argv = ["generate", "--task", args.task, "--steps", str(args.steps), "--policy", args.policy, "--out", args.out]
    argv += ["--noise", repr(args.noise), "--horizons", *map(str, args.horizons), "--beta", repr(args.beta)]
    for name in ("num_envs", "device", "seed", "episodes_per_shard"):
        if getattr(args, name) is not None:
            argv += [f"--{name}", str(getattr(args, name))]
    argv += [flag for flag in ("--overwrite", "--resume", "--expert_labels") if getattr(args, flag[2:])]
    return argv + list(extra)


def generate(args: argparse.Namespace, overrides: list[str], device: str, context=None) -> int:
    """Build the env (kit-less on the CPU), run the driver with a progress bar, print the summary. In a job of several
    ranks, this rank's share (see the module docstring)."""
    stop_requested = []  # SIGTERM (or SIGUSR1) from here on ends the run cleanly (exit 0), even during start-up
    for signum in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(signum, lambda signum, frame: stop_requested.append(signum))
    import gymnasium as gym
    from tqdm import tqdm

    from ..data import DatasetError, DatasetWriter, config_hash, summarize
    from ..distributed.context import DistContext
    from ..labels.labeler import labeler_cfg_for
    from ..rollout.driver import RolloutDriver
    from ..rollout.noise import correlate
    from ..rollout.policies import PolicyError, load_expert, make_policy

    context = context or DistContext()
    env_cfg, _ = task_env_cfg(args.task, overrides, device)
    if args.num_envs is not None:
        env_cfg.scene.num_envs = args.num_envs
    seed = 0 if args.seed is None else args.seed
    env_cfg.seed = seed
    cfg_hash = config_hash(_jsonable(env_cfg.to_dict()))  # the first run's config: resumed segments and ranks share it
    labeler_cfg = labeler_cfg_for(args.task, horizons=tuple(args.horizons))
    env_args = {
        "env_name": args.task,
        "type": 2,
        "env_kwargs": {"num_envs": env_cfg.scene.num_envs, "seed": seed, "policy": args.policy},
    }
    if args.expert_labels or args.beta > 0:
        env_args["env_kwargs"].update(expert_labels=args.expert_labels, beta=args.beta, noise=args.noise)
    try:
        segment = _begin(args, context, cfg_hash, env_args, seed, env_cfg.scene.num_envs)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    seed, journal, first_episode, stored = segment
    env_cfg.seed = seed
    missing = args.steps * env_cfg.scene.num_envs - (0 if args.append else stored)
    steps = max(0, -(-missing // env_cfg.scene.num_envs))
    env_offset = context.rank * env_cfg.scene.num_envs

    def writer_factory(specs):
        from ..distributed.generation import RankDatasetWriter

        if not context.distributed:
            return DatasetWriter(
                journal, args.task, cfg_hash, specs, episodes_per_shard=args.episodes_per_shard, resume=True
            )
        return RankDatasetWriter(
            journal, args.task, cfg_hash, specs, episodes_per_shard=args.episodes_per_shard, resume=True,
            env_args=env_args, first_episode=first_episode, env_offset=env_offset,
        )  # fmt: skip

    stats = None
    if steps > 0:
        with simulation(env_cfg, device):
            env = gym.make(args.task, cfg=env_cfg).unwrapped
            try:
                expert = load_expert(args.task, env) if args.expert_labels or args.beta > 0 else None
                policy = make_policy(args.policy, env, args.task, noise_std=args.noise, beta=args.beta, expert=expert)
                if args.noise_tau > 0:
                    policy = correlate(policy, args.noise_tau, env)
            except PolicyError as error:
                env.close()
                raise UsageError(str(error)) from None
            total = steps * env.num_envs
            desc = f"generate {args.task}" + (f" rank {context.rank}" if context.distributed else "")
            with tqdm(total=total, unit="tr", unit_scale=True, desc=desc, file=sys.stderr) as bar:

                def progress(done: int, stats) -> None:
                    bar.update(env.num_envs)
                    if done % 10 == 0:
                        bar.set_postfix(episodes=stats.episodes, dropped=stats.dropped_episodes, refresh=False)

                driver = RolloutDriver(
                    env,
                    policy,
                    writer_factory,
                    labeler_cfg,
                    seed=seed,
                    first_episode_index=_next_episode_index(journal, env, env_offset),
                    expert=expert if args.expert_labels else None,
                )
                try:
                    stats = driver.run(steps, progress=progress, stop=lambda: bool(stop_requested))
                except DatasetError as error:  # e.g. resuming with other keys (--horizons): the writer refused
                    env.close()
                    raise UsageError(str(error)) from None
            env.close()
    else:  # nothing missing (e.g. a rank that stored its share before another rank was killed): the new segment
        _mark_complete(journal)  # adds nothing, and its journal (the dataset, on one process) is complete again
    if context.distributed and not _all_finished(args.out, context, stats):
        return 1
    if context.is_main:
        _report(args.out, context, stats, stop_requested, summarize)
    return 0


def _mark_complete(directory) -> None:
    """Mark the manifest of ``directory`` complete (its segment began incomplete and wrote nothing)."""
    from ..data import load_manifest
    from ..data.dataset_dir import utc_now
    from ..data.manifest import MANIFEST_NAME, write_json_atomic

    manifest = load_manifest(directory)
    manifest.update(complete=True, updated_at=utc_now())
    write_json_atomic(Path(directory) / MANIFEST_NAME, manifest)


def _begin(args, context, cfg_hash: str, env_args: dict, seed: int, num_envs: int):
    """Start this run's segment: the dataset's (rank 0), then this rank's journal. Returns ``(this rank's seed, the
    directory it writes, its first episode id, the transitions it already holds)``."""
    from ..data import DatasetError, begin_segment, load_manifest
    from ..distributed.generation import episode_capacity, next_episode_id, rank_dir, remove_journals

    ranks = context.world_size
    decided = None
    if context.is_main:
        try:
            if not args.resume and not args.append:
                remove_journals(args.out)
            first = next_episode_id(args.out) if args.resume and context.distributed else None
            segment_seed, manifest = begin_segment(
                args.out, args.task, cfg_hash, env_args, seed, args.resume or args.append, args.overwrite, ranks=ranks,
                first_episode=first,
            )  # fmt: skip
            decided = (segment_seed, manifest["segments"][-1]["first_episode"], manifest["totals"]["transitions"])
        except DatasetError as error:
            decided = str(error)
    decided = context.broadcast_object(decided)
    if isinstance(decided, str):
        raise DatasetError(decided)
    segment_seed, first, stored = decided
    if not context.distributed:
        return segment_seed, args.out, first, stored
    journal = rank_dir(args.out, context.rank)
    rank_seed = segment_seed + context.rank
    rank_first = first + context.rank * episode_capacity(args.steps, num_envs)
    begin_segment(
        journal, args.task, cfg_hash, env_args, rank_seed, resume=True, fixed_seed=True, first_episode=rank_first
    )
    return rank_seed, journal, rank_first, load_manifest(journal)["totals"]["transitions"]


def _all_finished(out: str, context, stats) -> bool:
    """Whether every rank finished (gathered over the process group); rank 0 then publishes the dataset's manifest.
    A rank that died makes the gather fail: the manifest is left as it was before this run."""
    from ..distributed.generation import publish

    mine = {"rank": context.rank, "transitions": stats.transitions if stats else 0}
    try:
        context.all_gather_object(mine)
    except RuntimeError as error:
        print(
            f"wam generate: error: rank {context.rank} lost the other ranks ({str(error).splitlines()[0]}): a rank "
            f"failed, so {out}/manifest.json was not updated; --resume continues every rank",
            file=sys.stderr,
        )
        return False
    if context.is_main:
        publish(out, context.world_size)
    return True


def _report(out: str, context, stats, stopped: list[int], summarize) -> None:
    summary = summarize(out)
    if stats is None:
        print(f"[wam] {out} already holds {summary['transitions']} transitions: nothing to generate")
        return
    if stopped:
        name = signal.Signals(stopped[0]).name
        print(f"[wam] {name}: stopped after {stats.transitions} transitions; --resume continues {out}")
    rate = summary["success_rate"] or 0.0
    ranks = f" by {context.world_size} ranks" if context.distributed else ""
    if stats.episodes and stats.transitions < summary["transitions"]:  # a segment added to a dataset
        print(
            f"[wam] this run: {stats.transitions} transitions in {stats.episodes} episodes, success rate "
            f"{stats.successes / stats.episodes:.3f}"
        )
    print(
        f"[wam] wrote {summary['transitions']} transitions in {summary['episodes']} episodes "
        f"({summary['shards']} shards{ranks}) to {out}; success rate {rate:.3f}, "
        f"dropped episodes {summary['dropped_episodes']}, {stats.transitions / max(stats.seconds, 1e-9):.0f} "
        f"transitions/s{' on rank 0' if context.distributed else ''}"
    )


def _next_episode_index(out: str, env, env_offset: int = 0):
    """Per env, the ``episode_index`` its next episode gets: one more than its last stored one (0 if none). The
    dataset's env ids are ``env_offset + env`` (a rank's journal)."""
    import h5py
    import torch

    from ..data import load_manifest

    following = torch.zeros(env.num_envs, dtype=torch.long)
    for shard in load_manifest(out)["shards"]:
        with h5py.File(Path(out) / shard["name"], "r") as file:
            if "episodes/attrs/episode_index" not in file:
                continue
            env_ids = torch.from_numpy(file["episodes/env_id"][()].astype("int64")) - env_offset
            index = torch.from_numpy(file["episodes/attrs/episode_index"][()].astype("int64")) + 1
            keep = (env_ids >= 0) & (env_ids < env.num_envs)
            following.scatter_reduce_(0, env_ids[keep], index[keep], reduce="amax")
    return following.to(env.device)


def _jsonable(value):
    """A JSON-encodable copy of a config dict (callables and classes become their qualified names)."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return f"{getattr(value, '__module__', '')}.{getattr(value, '__qualname__', type(value).__name__)}"
