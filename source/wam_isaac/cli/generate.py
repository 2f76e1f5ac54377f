"""``wam generate``: run a task's envs under a behaviour policy and write a labeled dataset.

Every transition is labeled by the Warp label kernels and streamed to crash-safe HDF5 shards with a manifest
(``wam inspect DIR`` summarizes it). The behaviour policy is ``random``, ``scripted`` (the task's expert) or the
path of an rsl-rl checkpoint; ``--noise`` adds Gaussian exploration noise to its actions.

Preemption: SIGTERM makes the run stop stepping, write the episodes in progress (attribute ``budget_end``), publish
the shard in progress and exit 0. ``--resume`` continues a killed or preempted run in the same ``--out`` (same task,
``--num_envs``, ``--seed`` and overrides, else a one-line error, exit 2, nothing changed): new shards, episode ids
after the stored ones, the next seed of the dataset (segment ``k`` runs with ``--seed + k``), and ``--steps`` is the
size of the whole dataset: ``steps * num_envs`` transitions, of which the stored ones are deducted (the run makes
``ceil(missing / num_envs)`` steps; a complete dataset is left as it is).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from .common import add_env_args, check_override_paths, check_task, positive_int, resolve_device, split_overrides
from .errors import UsageError


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="generate a labeled dataset", description=__doc__)
    add_env_args(parser)
    parser.add_argument("--steps", type=positive_int, required=True, help="env steps (each advances all envs)")
    parser.add_argument("--policy", required=True, help="random, scripted, or the path of an rsl-rl checkpoint")
    parser.add_argument("--out", required=True, help="dataset directory (created; must be empty unless --overwrite)")
    parser.add_argument("--overwrite", action="store_true", help="replace the dataset in a non-empty --out")
    parser.add_argument("--resume", action="store_true", help="continue the (killed, preempted) dataset in --out")
    parser.add_argument("--noise", type=float, default=0.0, help="std of Gaussian exploration noise on actions")
    parser.add_argument("--horizons", type=positive_int, nargs="+", default=[1, 8], help="state-delta horizons")
    parser.add_argument(
        "--episodes_per_shard", type=positive_int, default=None, help="episodes per shard (default: ~131k transitions)"
    )
    parser.set_defaults(run=run)


def _check_policy(spec: str, task: str) -> None:
    from ..rollout.policies import BUILTIN, has_expert

    if spec == "scripted" and not has_expert(task):
        raise UsageError(f"task {task} has no scripted expert; use --policy random or a checkpoint path")
    if spec not in BUILTIN and not Path(spec).is_file():
        raise UsageError(f"unknown policy '{spec}'; expected random, scripted or the path of a checkpoint file")


def run(args: argparse.Namespace, extra: list[str]) -> int:
    from ..data import DatasetError, check_out_dir

    overrides = split_overrides(extra)
    check_task(args.task)
    _check_policy(args.policy, args.task)
    if args.noise < 0:
        raise UsageError(f"--noise must be >= 0, got {args.noise}")
    device = resolve_device(args.device)
    if args.resume and args.overwrite:
        raise UsageError("--resume continues the dataset in --out, --overwrite replaces it: pass one of them")
    try:
        if not args.resume:
            check_out_dir(args.out, args.overwrite)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    return generate(args, overrides, device)


def generate(args: argparse.Namespace, overrides: list[str], device: str) -> int:
    """Build the env (kit-less on the CPU), run the driver with a progress bar, print the summary."""
    stop_requested = []  # SIGTERM from here on ends the run cleanly (exit 0), even during start-up
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.append(signum))
    import gymnasium as gym
    import torch
    from tqdm import tqdm

    from isaaclab.app import launch_simulation

    from isaaclab_tasks.utils import resolve_task_config

    from ..data import DatasetError, DatasetWriter, begin_segment, config_hash, summarize
    from ..labels.labeler import labeler_cfg_for
    from ..rollout.driver import RolloutDriver
    from ..rollout.policies import PolicyError, make_policy

    hydra = list(overrides) + ([] if torch.cuda.is_available() else ["presets=newton_mjwarp"])
    env_cfg, _ = resolve_task_config(args.task, "rsl_rl_cfg_entry_point", overrides=[])
    check_override_paths(overrides, env_cfg, None)
    env_cfg, _ = resolve_task_config(args.task, "rsl_rl_cfg_entry_point", overrides=hydra)
    env_cfg.sim.device = device
    if args.num_envs is not None:
        env_cfg.scene.num_envs = args.num_envs
    seed = 0 if args.seed is None else args.seed
    env_cfg.seed = seed
    cfg_hash = config_hash(_jsonable(env_cfg.to_dict()))  # of the first run's config: resumed segments share it
    labeler_cfg = labeler_cfg_for(args.task, horizons=tuple(args.horizons))
    env_args = {
        "env_name": args.task,
        "type": 2,
        "env_kwargs": {"num_envs": env_cfg.scene.num_envs, "seed": seed, "policy": args.policy},
    }
    try:
        seed, manifest = begin_segment(args.out, args.task, cfg_hash, env_args, seed, args.resume, args.overwrite)
    except DatasetError as error:
        raise UsageError(str(error)) from None
    env_cfg.seed = seed
    missing = args.steps * env_cfg.scene.num_envs - manifest["totals"]["transitions"]
    steps = -(-missing // env_cfg.scene.num_envs)
    if steps <= 0:
        print(f"[wam] {args.out} already holds {manifest['totals']['transitions']} transitions: nothing to generate")
        return 0

    def writer_factory(specs):
        return DatasetWriter(
            args.out, args.task, cfg_hash, specs, episodes_per_shard=args.episodes_per_shard, resume=True
        )

    with launch_simulation(env_cfg, {"device": device}):
        env = gym.make(args.task, cfg=env_cfg).unwrapped
        try:
            policy = make_policy(args.policy, env, args.task, noise_std=args.noise)
        except PolicyError as error:
            env.close()
            raise UsageError(str(error)) from None
        total = steps * env.num_envs
        with tqdm(total=total, unit="tr", unit_scale=True, desc=f"generate {args.task}", file=sys.stderr) as bar:

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
                first_episode_index=_next_episode_index(args.out, env),
            )
            try:
                stats = driver.run(steps, progress=progress, stop=lambda: bool(stop_requested))
            except (
                DatasetError
            ) as error:  # e.g. resuming with other keys (--horizons): the writer refused, nothing changed
                env.close()
                raise UsageError(str(error)) from None
        env.close()
    summary = summarize(args.out)
    if stop_requested:
        print(f"[wam] SIGTERM: stopped after {stats.transitions} transitions; --resume continues {args.out}")
    rate = summary["success_rate"] or 0.0
    print(
        f"[wam] wrote {summary['transitions']} transitions in {summary['episodes']} episodes "
        f"({summary['shards']} shards) to {args.out}; success rate {rate:.3f}, "
        f"dropped episodes {summary['dropped_episodes']}, {stats.transitions / max(stats.seconds, 1e-9):.0f} "
        "transitions/s"
    )
    return 0


def _next_episode_index(out: str, env):
    """Per env, the ``episode_index`` its next episode gets: one more than its last stored one (0 if none)."""
    import h5py
    import torch

    from ..data import load_manifest

    following = torch.zeros(env.num_envs, dtype=torch.long)
    for shard in load_manifest(out)["shards"]:
        with h5py.File(Path(out) / shard["name"], "r") as file:
            if "episodes/attrs/episode_index" not in file:
                continue
            env_ids = torch.from_numpy(file["episodes/env_id"][()])
            index = torch.from_numpy(file["episodes/attrs/episode_index"][()].astype("int64")) + 1
            keep = env_ids < env.num_envs
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
