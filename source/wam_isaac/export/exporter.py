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
from contextlib import contextmanager
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
    num_envs: int = 32,
    samples: int = 1000,
    seed: int = 0,
    world_model: str | Path | None = None,
    world_model_only: bool = False,
    task: str | None = None,
    calibration_steps: int = 300,
) -> ExportResult:
    """Export ``checkpoint`` to ``out``; ``samples`` random and about as many recorded observations are checked.

        ``checkpoint`` is an rsl-rl run checkpoint (``model_<i>.pt``; ``world_model`` may name a ``wam train-model``
    checkpoint of the same task to export beside its policy) or a ``wam train-model`` checkpoint (its world model,
    and its policy for joint and cascaded WAMs; ``world_model_only`` exports a world model without policy; ``task``
    overrides the task read from its dataset's manifest). The monitor is calibrated on ``calibration_steps`` steps
    of every env.

    Raises:
            ExportError: bad input (checkpoint, out directory, a run whose config differs from the registered task) or a
                failed validation; ``out`` is then untouched.
    """
    from .wam_checkpoint import checkpoint_task, export_wam_env, is_wam_checkpoint, read_wam_checkpoint

    out = check_out(out, overwrite)
    if is_wam_checkpoint(checkpoint):
        if world_model is not None:
            raise ExportError(
                "--world-model adds a world model to an rsl-rl run checkpoint; --checkpoint is a "
                "wam train-model checkpoint, whose own world model is exported"
            )
        wam = read_wam_checkpoint(checkpoint)
        if not wam.has_policy and not world_model_only:
            raise ExportError(
                f"'{checkpoint}' is a {wam.kind} world model without a policy head; pass "
                "--world-model-only to export its world model alone"
            )
        task = checkpoint_task(wam, task)
        with task_env(task, "rsl_rl_cfg_entry_point", device, num_envs, seed) as (env, _):
            return export_wam_env(env, wam, task, out, samples, world_model_only, calibration_steps=calibration_steps)
    if world_model_only:
        raise ExportError(f"--world-model-only takes a wam train-model checkpoint; '{checkpoint}' is not one")
    run = read_run(checkpoint)
    wam = None if world_model is None else read_wam_checkpoint(world_model)
    if wam is not None and task is not None and task != run.task:
        raise ExportError(f"--task {task} but the run was trained on {run.task}")
    with task_env(run.task, run.agent_entry_point, device, num_envs, seed) as (env, agent_cfg):
        return export_env(env, run, agent_cfg, out, samples, world_model=wam, calibration_steps=calibration_steps)


@contextmanager
def task_env(task: str, agent_entry_point: str, device: str, num_envs: int, seed: int, configure=None, overrides=()):
    """A live env of ``task`` (``num_envs`` envs on ``device``) and the task's agent config, closed afterwards;
    ``overrides`` are Hydra overrides (``env.<field>=...``), then ``configure(env_cfg)`` edits the env config before
    the env is built. An :class:`ExportError` raised with the env up (bad input found only then, a failed parity
    check) leaves after the simulation has closed (:func:`wam_isaac.envs.simulation.launched`), so that it stays one
    line."""
    import gymnasium as gym
    import torch

    from isaaclab_tasks.utils import resolve_task_config

    import wam_isaac_tasks  # noqa: F401  (registers the tasks)

    from ..envs.simulation import launched

    if task not in gym.registry:
        raise ExportError(f"task {task} is not registered here; see `wam tasks`")
    presets = [] if torch.cuda.is_available() else ["presets=newton_mjwarp"]
    env_cfg, agent_cfg = resolve_task_config(task, agent_entry_point, overrides=presets + list(overrides))
    env_cfg.scene.num_envs = num_envs
    env_cfg.sim.device = device
    env_cfg.seed = seed
    if configure is not None:
        configure(env_cfg)
    with launched(env_cfg, device, (ExportError,)):
        env = gym.make(task, cfg=env_cfg).unwrapped
        try:
            yield env, agent_cfg
        finally:
            env.close()


def export_env(
    env, run: RunInfo, agent_cfg, out: Path, samples: int = 1000, world_model=None, calibration_steps: int = 200
) -> ExportResult:
    """Export ``run``'s policy using a live ``env`` of its task (its config must equal ``params/env.yaml`` on
    :data:`CHECKED_ENV_FIELDS`); ``agent_cfg`` is the task's registered agent config, updated here from
    ``params/agent.yaml``; ``out`` must have passed :func:`check_out`. ``world_model``: a
    :class:`~wam_isaac.export.wam_checkpoint.WamCheckpoint` exported beside the policy (``world_model.onnx``, its
    monitor calibrated on rollouts of this policy), or ``None``."""
    from . import validate
    from .layout import action_layout, observation_layout
    from .onnx_policy import export_policy_onnx
    from .recording import record_rollout

    check_trained_config(env.cfg, run.env_yaml)
    wrapped, actor, agent_cfg = load_policy(env, run, agent_cfg)
    actions = action_layout(env, agent_cfg.clip_actions)
    flatten = None
    if hasattr(actor, "wam"):  # a WamPPO run: its actor reads the WAM's state, instruction, previous action
        from .wam_checkpoint import wam_of_run
        from .wam_policy_onnx import wam_observation_layout

        if world_model is not None:
            raise ExportError("--world-model: a WamPPO run exports its own world model beside its policy")
        world_model, group_sizes, flatten = wam_of_run(actor, run)
        observation = wam_observation_layout(env, actor.schema, 1, actions["joint_names"])
    else:
        obs = wrapped.get_observations()
        group_sizes = [(group, int(obs[group].shape[-1])) for group in actor.obs_groups]
        observation = observation_layout(env, list(actor.obs_groups), actions["joint_names"])
    if observation["size"] != sum(size for _, size in group_sizes):
        raise ExportError(f"observation layout has {observation['size']} values, the policy reads {group_sizes}")
    recording = record_rollout(wrapped, actor, group_sizes, steps=-(-samples // env.num_envs), flatten=flatten)

    tmp = out.resolve().parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        policy_path = tmp / POLICY_FILE
        policy_entry = export_policy_onnx(actor, policy_path)
        validate.check_model(policy_path)
        parity_random = validate.parity_random(
            actor, group_sizes, policy_path, policy_entry, samples, observed=recording.observations
        )
        parity_recorded = validate.parity_recorded(policy_path, policy_entry, recording)
        validate.require("random", parity_random)
        validate.require("recorded", parity_recorded)
        source = {
            "checkpoint": str(run.checkpoint),
            "run_dir": str(run.run_dir),
            "iteration": run.iteration,
            "agent_entry_point": run.agent_entry_point,
        }
        metadata = base_metadata(env, run.task, source, actions)
        metadata.update(policy=policy_entry, observation=observation)
        metadata["validation"] = {
            "tolerance": validate.TOLERANCE,
            "random": {"count": samples, "max_abs_diff": parity_random, "inputs": validate.RANDOM_OBSERVATIONS},
            "recorded": {"count": int(recording.dones.size), "max_abs_diff": parity_recorded},
        }
        if world_model is not None:
            metadata["world_model"] = _world_model_beside(
                env, actor, agent_cfg, tmp, world_model, samples, calibration_steps
            )
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
        _fill_unset_fields(agent_cfg, run.agent_yaml)
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
        # the policy only: a joint-WAM PPO run's replay holds its training envs, not the export's
        runner.alg.load(run.state, load_cfg={"actor": True, "replay": False}, strict=True)
    except (RuntimeError, KeyError) as error:
        first = str(error).strip().splitlines()[0]
        raise ExportError(f"checkpoint '{run.checkpoint}' does not fit {run.task}'s policy: {first[:160]}") from None
    actor = runner.alg.get_policy()
    actor.eval()
    return wrapped, actor, agent_cfg


def base_metadata(env, task: str, source: dict, actions: dict) -> dict:
    """The metadata every export shares (schema, task, action layout, control, robot, DR, versions); ``policy``,
    ``observation``, ``world_model`` and ``validation`` are ``None`` until the caller sets them."""
    from .layout import control_section
    from .robot import domain_randomization, robot_section

    assets = {term["asset"] for term in actions["terms"]}
    if len(assets) != 1:
        raise ExportError(f"action terms drive {sorted(assets)}; export supports one articulation")
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "task": task,
        "created_at": datetime.now(UTC).isoformat(),
        "source": source,
        "policy": None,
        "observation": None,
        "action": actions,
        "control": control_section(env),
        "robot": robot_section(env, assets.pop()),
        "domain_randomization": domain_randomization(env),
        "world_model": None,
        "validation": None,
        "versions": package_versions(),
    }


def _world_model_beside(
    env, actor, agent_cfg, export_dir: Path, checkpoint, samples: int, calibration_steps: int
) -> dict:
    """The ``world_model`` block of a world model exported beside an rsl-rl policy, its monitor calibrated on
    rollouts of that policy (the actions the env receives: rsl-rl's clip applied)."""
    import torch
    from tensordict import TensorDict

    from .monitor_calibration import FALSE_ALARM_RATE, record_world
    from .wam_checkpoint import add_world_model

    clip = agent_cfg.clip_actions

    def behaviour(obs, window):
        with torch.inference_mode():
            actions = actor(TensorDict(dict(obs), batch_size=[env.num_envs]))
        return actions if clip is None else actions.clamp(-clip, clip)

    checkpoint.model.to(env.device)
    steps = max(calibration_steps, -(-samples // env.num_envs))
    actor.reset()
    recording = record_world(env, checkpoint.schema, checkpoint.history, behaviour, steps, on_done=actor.reset)
    checkpoint.model.to("cpu")
    block = add_world_model(env, export_dir, checkpoint, recording, samples, FALSE_ALARM_RATE)
    block["monitor"]["behaviour"] = "policy"
    return block


def _fill_unset_fields(cfg, trained: dict) -> None:
    """Set the fields of ``cfg`` that are ``None`` to the run's values (recursively, in place): Isaac Lab's
    ``from_dict`` refuses a value whose type differs from the field's current one, and a ``None`` default (a
    joint-WAM PPO run's ``algorithm.pretrained_checkpoint``) has type ``NoneType``."""
    for key, value in trained.items():
        if not hasattr(cfg, key) or value is None:
            continue
        current = getattr(cfg, key)
        if current is None:
            setattr(cfg, key, value)
        elif isinstance(value, dict) and hasattr(current, "__dataclass_fields__"):
            _fill_unset_fields(current, value)


def write_metadata(export_dir: Path, metadata: dict) -> dict:
    """Embed ``metadata`` (without ``files``) in every ONNX file of ``export_dir``, then record the sha256 and size of
    every final file under ``files`` and write ``metadata.json``; returns the completed metadata."""
    from .onnx_policy import attach_metadata

    export_dir = Path(export_dir)
    onnx_files = sorted(path for path in export_dir.iterdir() if path.suffix == ".onnx")
    for path in onnx_files:
        attach_metadata(path, embedded_metadata(metadata))
    metadata = {
        **metadata,
        "files": {path.name: {"sha256": sha256_file(path), "bytes": path.stat().st_size} for path in onnx_files},
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
