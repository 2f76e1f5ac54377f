"""``export_checkpoint``: an rsl-rl run checkpoint -> ``policy.onnx`` + ``metadata.json``, validated, published
atomically.

The task's env is created (few envs, on the export device) to read what the robot must reproduce from the live
managers and actuators, and to record a short rollout of the torch policy for the parity check. Everything is written
to a temporary directory beside ``out`` and renamed into place only after ``onnx.checker`` and the onnxruntime-vs-torch
parity checks pass: on any failure nothing is left at ``out`` (an existing export is replaced only on success).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as package_metadata
from pathlib import Path

from ..deploy.schema import METADATA_FILE, POLICY_FILE, SCHEMA, SCHEMA_VERSION, embedded_metadata, sha256_file
from .errors import ExportError
from .run_dir import RunInfo, load_params_yaml, read_run

CHECKED_ENV_FIELDS = ("decimation", "sim.dt", "observations.policy", "actions", "events")
"""Env-config subtrees that must be as trained (``params/env.yaml``) for the metadata to describe the policy."""

VERSIONED_PACKAGES = (
    "wam_isaac",
    "isaaclab",
    "rsl-rl-lib",
    "torch",
    "onnx",
    "onnxruntime",
    "numpy",
    "newton",
    "warp-lang",
)


@dataclass
class ExportResult:
    """What an export wrote and measured."""

    out: Path
    metadata: dict
    parity_random: float
    """Max |onnxruntime - torch| over the random observations."""
    parity_recorded: float
    """Max |onnxruntime - torch| over the recorded observations."""


def check_out(out: str | Path, overwrite: bool) -> Path:
    """``out`` as a path, refusing an existing one unless ``overwrite``, and a missing parent."""
    out = Path(out)
    if out.exists() and not overwrite:
        raise ExportError(f"--out '{out}' exists; pass --overwrite to replace it, or choose a new directory")
    if out.exists() and not out.is_dir():
        raise ExportError(f"--out '{out}' is a file; expected a directory")
    if not out.resolve().parent.is_dir():
        raise ExportError(f"--out '{out}': parent directory {out.resolve().parent} does not exist")
    return out


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    overwrite: bool = False,
    device: str = "cpu",
    num_envs: int = 8,
    samples: int = 1000,
    seed: int = 0,
) -> ExportResult:
    """Export ``checkpoint`` to ``out``; ``samples`` random and about as many recorded observations are checked.

    Raises:
        ExportError: bad input (checkpoint, out directory, a run whose config differs from the registered task) or a
            failed validation; ``out`` is then untouched.
    """
    out = check_out(out, overwrite)
    run = read_run(checkpoint)
    import gymnasium as gym
    import torch

    from isaaclab.app import launch_simulation

    from isaaclab_tasks.utils import resolve_task_config

    import wam_isaac_tasks  # noqa: F401  (registers the tasks)

    if run.task not in gym.registry:
        raise ExportError(f"'{checkpoint}' was trained on {run.task}, which is not registered here")
    presets = [] if torch.cuda.is_available() else ["presets=newton_mjwarp"]
    env_cfg, agent_cfg = resolve_task_config(run.task, run.agent_entry_point, overrides=presets)
    env_cfg.scene.num_envs = num_envs
    env_cfg.sim.device = device
    env_cfg.seed = seed
    with launch_simulation(env_cfg, {"device": device}):
        env = gym.make(run.task, cfg=env_cfg).unwrapped
        try:
            return export_env(env, run, agent_cfg, out, samples)
        finally:
            env.close()


def export_env(env, run: RunInfo, agent_cfg, out: Path, samples: int = 1000) -> ExportResult:
    """Export ``run``'s policy using a live ``env`` of its task (its config must equal ``params/env.yaml`` on
    :data:`CHECKED_ENV_FIELDS`); ``agent_cfg`` is the task's registered agent config, updated here from
    ``params/agent.yaml``; ``out`` must have passed :func:`check_out`."""
    from . import validate
    from .layout import action_layout, control_section, observation_layout
    from .onnx_policy import export_policy_onnx
    from .recording import record_rollout
    from .robot import domain_randomization, robot_section

    check_trained_config(env.cfg, run.env_yaml)
    wrapped, actor, agent_cfg = load_policy(env, run, agent_cfg)
    obs = wrapped.get_observations()
    group_sizes = [(group, int(obs[group].shape[-1])) for group in actor.obs_groups]

    actions = action_layout(env, agent_cfg.clip_actions)
    observation = observation_layout(env, list(actor.obs_groups), actions["joint_names"])
    if observation["size"] != sum(size for _, size in group_sizes):
        raise ExportError(f"observation layout has {observation['size']} values, the policy reads {group_sizes}")
    recording = record_rollout(wrapped, actor, group_sizes, steps=-(-samples // env.num_envs))

    tmp = out.resolve().parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        policy_path = tmp / POLICY_FILE
        policy_entry = export_policy_onnx(actor, policy_path)
        validate.check_model(policy_path)
        parity_random = validate.parity_random(actor, group_sizes, policy_path, policy_entry, samples)
        parity_recorded = validate.parity_recorded(policy_path, policy_entry, recording)
        validate.require("random", parity_random)
        validate.require("recorded", parity_recorded)
        assets = {term["asset"] for term in actions["terms"]}
        if len(assets) != 1:
            raise ExportError(f"action terms drive {sorted(assets)}; export supports one articulation")
        metadata = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "task": run.task,
            "created_at": datetime.now(UTC).isoformat(),
            "source": {
                "checkpoint": str(run.checkpoint),
                "run_dir": str(run.run_dir),
                "iteration": run.iteration,
                "agent_entry_point": run.agent_entry_point,
            },
            "policy": policy_entry,
            "observation": observation,
            "action": actions,
            "control": control_section(env),
            "robot": robot_section(env, assets.pop()),
            "domain_randomization": domain_randomization(env),
            "world_model": None,
            "validation": {
                "tolerance": validate.TOLERANCE,
                "random": {"count": samples, "max_abs_diff": parity_random},
                "recorded": {"count": int(recording.dones.size), "max_abs_diff": parity_recorded},
            },
            "versions": package_versions(),
        }
        metadata = write_metadata(tmp, metadata)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, metadata, parity_random, parity_recorded)


def load_policy(env, run: RunInfo, agent_cfg) -> tuple:
    """The checkpoint's actor (eval mode) on ``env``'s device, built from ``params/agent.yaml`` over the task's
    registered ``agent_cfg``; returns the rsl-rl-wrapped env, the actor and the agent config used."""
    from isaaclab_rl.rsl_rl import (
        RslRlVecEnvWrapper,
        check_rsl_rl_version,
        create_rsl_rl_runner,
        handle_deprecated_rsl_rl_cfg,
    )

    try:
        agent_cfg.from_dict(run.agent_yaml)
    except (ValueError, KeyError, TypeError) as error:
        raise ExportError(
            f"params/agent.yaml of {run.run_dir} does not fit {run.task}'s agent config: {error}"
        ) from None
    agent_cfg.device = str(env.device)
    agent_cfg = handle_deprecated_rsl_rl_cfg(agent_cfg, check_rsl_rl_version())
    wrapped = RslRlVecEnvWrapper(env, clip_actions=agent_cfg.clip_actions)
    runner = create_rsl_rl_runner(wrapped, agent_cfg)
    try:
        runner.alg.load(run.state, load_cfg={"actor": True}, strict=True)
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0]
        raise ExportError(f"checkpoint '{run.checkpoint}' does not fit {run.task}'s policy: {first[:160]}") from None
    actor = runner.alg.get_policy()
    actor.eval()
    return wrapped, actor, agent_cfg


def write_metadata(export_dir: Path, metadata: dict) -> dict:
    """Embed ``metadata`` (without ``files``) in ``export_dir/policy.onnx``, then record the sha256 and size of the
    final file under ``files`` and write ``metadata.json``; returns the completed metadata."""
    from .onnx_policy import attach_metadata

    policy_path = Path(export_dir) / POLICY_FILE
    attach_metadata(policy_path, embedded_metadata(metadata))
    metadata = {
        **metadata,
        "files": {POLICY_FILE: {"sha256": sha256_file(policy_path), "bytes": policy_path.stat().st_size}},
    }
    _write_json(Path(export_dir) / METADATA_FILE, metadata)
    return metadata


def check_trained_config(env_cfg, trained: dict) -> None:
    """Raise unless the env built here matches ``params/env.yaml`` on :data:`CHECKED_ENV_FIELDS` (a run trained
    with Hydra overrides on them would otherwise be described by the registered task's values)."""
    import yaml

    from isaaclab.utils.dict import class_to_dict

    here = load_params_yaml(yaml.dump(class_to_dict(env_cfg), default_flow_style=False, sort_keys=False))
    for field in CHECKED_ENV_FIELDS:
        mine, theirs = _subtree(here, field), _subtree(trained, field)
        if mine != theirs:
            raise ExportError(
                f"the run was trained with env.{field} {_first_difference(mine, theirs, field)}; export rebuilds the "
                "registered task, so export runs trained without overrides of observations, actions or events"
            )


def _subtree(tree: dict, field: str):
    for key in field.split("."):
        tree = tree.get(key) if isinstance(tree, dict) else None
    return tree


def _first_difference(mine, theirs, path: str) -> str:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in list(theirs) + [k for k in mine if k not in theirs]:
            if mine.get(key) != theirs.get(key):
                return _first_difference(mine.get(key), theirs.get(key), f"{path}.{key}")
    return f"({path}={theirs!r}, registered task: {mine!r})"


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages the export and the runtime depend on."""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = package_metadata.version(name)
        except package_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def _write_json(path: Path, data: dict) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())


def publish(tmp: Path, out: Path) -> None:
    """Rename the finished ``tmp`` directory to ``out``, replacing an existing ``out`` only now."""
    old = None
    if out.exists():
        old = out.resolve().parent / f".{out.name}.replaced-{os.getpid()}"
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
