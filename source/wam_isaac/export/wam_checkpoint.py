"""Export of ``wam train-model`` checkpoints: ``world_model.onnx`` (any model), ``policy.onnx`` (joint and cascaded
WAMs: the action head acting on its window), validated and published like an rsl-rl export; and the world-model
block added to any export (:func:`add_world_model`), with the surprise monitor calibrated on simulated rollouts."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..deploy.schema import POLICY_FILE
from . import validate
from .errors import ExportError
from .monitor_calibration import FALSE_ALARM_RATE, WorldRecording, calibrate_monitor, record_world
from .world_model_onnx import WORLD_MODEL_FILE, export_world_model_onnx, state_layout

DELTA_MEANING = (
    "the predicted change from the window's last state s_t to s_{t+1}: s_{t+1} - s_t for vector terms; for quaternion "
    "terms (xyzw) the rotation vector log(q_{t+1} q_t^-1) [rad], world frame (rotation='rotvec'), or the difference "
    "of the stored numbers (rotation='raw')"
)


@dataclass
class WamCheckpoint:
    """A trained WAM to export: a ``wam train-model`` checkpoint, or the joint WAM of a WamPPO run."""

    path: Path
    model: torch.nn.Module
    schema: object
    """Its :class:`~wam_isaac.models.schema.WamSchema`."""
    kind: str
    """``ModelCfg.kind``: gru, mlp, transformer, joint or cascaded."""
    history: int
    """H: the steps of history its world model was trained to condition on."""
    epoch: int | None = None
    """Epochs (train-model) or iterations (WamPPO) trained."""
    data: str | None = None
    """The dataset it was trained on (train-model)."""

    @property
    def has_policy(self) -> bool:
        return self.kind in ("joint", "cascaded")


def wam_of_run(actor, run) -> tuple[WamCheckpoint, list[tuple[str, int]], object]:
    """The WAM of a WamPPO run's actor (a copy on the CPU; a joint WAM, or a cascaded one) as a
    :class:`WamCheckpoint`, the actor's flat input groups ``(name, size)`` in order, and the function flattening the
    env's nested groups into them."""
    import copy

    from ..models.rl_adapters import INSTRUCTION_GROUP, PREVIOUS_ACTION_GROUP, STATE_GROUP, flatten_observations

    schema = actor.schema
    world_model = ((run.agent_yaml.get("algorithm") or {}).get("world_model")) or {}
    checkpoint = WamCheckpoint(
        run.checkpoint, copy.deepcopy(actor.model).cpu().eval(), schema, actor.model.cfg.kind,
        int(world_model.get("history", 8)), run.iteration,
    )  # fmt: skip
    groups = [(STATE_GROUP, schema.state_dim)]
    groups += [(INSTRUCTION_GROUP, schema.instruction_dim)] if schema.instruction_dim else []
    groups += [(PREVIOUS_ACTION_GROUP, schema.action_dim)]
    return checkpoint, groups, lambda obs: flatten_observations(obs, schema)


def is_wam_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` holds a ``wam train-model`` checkpoint (format entry), without building its model."""
    from ..training.checkpoint import CheckpointError, load_checkpoint

    try:
        load_checkpoint(path)
    except CheckpointError:
        return False
    return True


def read_wam_checkpoint(path: str | Path, device: str = "cpu") -> WamCheckpoint:
    """Load a ``wam train-model`` checkpoint and rebuild its model (eval mode).

    Raises:
        ExportError: not a readable wam_isaac checkpoint.
    """
    from ..models.schema import WamSchema
    from ..training.checkpoint import CheckpointError
    from ..training.run import load_model

    try:
        model, cfg, payload = load_model(path, device)
    except CheckpointError as error:
        raise ExportError(str(error)) from None
    except (RuntimeError, KeyError, ValueError) as error:
        raise ExportError(f"'{path}': its model does not rebuild ({str(error).splitlines()[0][:120]})") from None
    schema = WamSchema.from_dict(payload["schema"])
    return WamCheckpoint(
        Path(path).resolve(), model, schema, cfg.model.kind, int(cfg.train.history), payload["epoch"], cfg.data
    )


def checkpoint_task(checkpoint: WamCheckpoint, task: str | None) -> str:
    """The task a train-model checkpoint was trained on: ``task`` if given, else its dataset manifest's task id."""
    if task is not None:
        return task
    from ..data.errors import ManifestError
    from ..data.manifest import load_manifest

    try:
        return load_manifest(checkpoint.data)["task_id"]
    except (ManifestError, OSError, KeyError):
        raise ExportError(
            f"the dataset '{checkpoint.data}' of {checkpoint.path.name} is not readable here, so its task is "
            "unknown; pass --task"
        ) from None


SCALED_RULE = "max over output elements of |onnxruntime - torch| / max(1, |torch|) <= tolerance"
"""The world model's parity rule (stated in the metadata): absolute for outputs up to 1, relative above."""

RANDOM_WINDOWS = "mean + 3 std N(0, 1) of the model's input normalizers, unit quaternions"
"""How the random windows of the world model's parity check are drawn (stated in the metadata)."""


def random_windows(schema, history: int, count: int, *, graph, seed: int = 0) -> dict[str, np.ndarray]:
    """Random world-model inputs for ``graph`` (a :class:`~wam_isaac.export.world_model_onnx.WorldModelGraph`):
    quaternions uniform on the unit sphere, every other entry drawn from ``mean + 3 std N(0, 1)`` of the model's own
    input normalizer (states, instructions, actions), the span of what it was trained on whatever the units (a cube's
    height varies by millimetres, a joint by radians). Raw-unit draws would put such entries thousands of stds out
    and make float32 rounding inside the network, not the export, decide a parity check."""
    rng = np.random.default_rng(seed)
    sizes = {
        "states": schema.state_dim,
        "instruction": schema.instruction_dim,
        "prev_actions": schema.action_dim,
        "action": schema.action_dim,
    }
    n = graph.members[0].normalizers
    centre = {name: np.zeros(size) for name, size in sizes.items()}
    spread = {name: np.ones(size) for name, size in sizes.items()}  # rotation slices: overwritten below
    for layout in graph.space.layouts:
        if not layout.rotation:
            state = slice(layout.term.start, layout.term.stop)
            centre["states"][state] = n.state.mean[layout.feature].double().numpy()
            spread["states"][state] = 3.0 * n.state.std[layout.feature].double().numpy()
    centre["instruction"] = n.instruction.mean.double().numpy()
    spread["instruction"] = 3.0 * n.instruction.std.double().numpy()
    for name in ("prev_actions", "action"):
        centre[name], spread[name] = n.action.mean.double().numpy(), 3.0 * n.action.std.double().numpy()
    shapes = {name: (count, history, size) for name, size in sizes.items()}
    shapes["action"] = (count, schema.action_dim)
    feed = {name: centre[name] + spread[name] * rng.standard_normal(shape) for name, shape in shapes.items()}
    states = feed["states"]
    for term in schema.quaternion_slices():
        quat = rng.standard_normal(states[..., term.start : term.stop].shape)
        states[..., term.start : term.stop] = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
    return {name: value.astype(np.float32) for name, value in feed.items()}


def graph_parity(graph, path: Path, feed: dict[str, np.ndarray]) -> tuple[float, list[np.ndarray]]:
    """Max |onnxruntime - torch| over every output of ``graph`` on ``feed``; returns it and the ORT outputs."""
    worst, _, outputs = graph_parity_scaled(graph, path, feed)
    return worst, outputs


def graph_parity_scaled(graph, path: Path, feed: dict[str, np.ndarray]) -> tuple[float, float, list[np.ndarray]]:
    """Max |onnxruntime - torch| over every output of ``graph`` on ``feed``, the same divided element-wise by
    ``max(1, |torch|)`` (:func:`~wam_isaac.export.validate.scaled_diff`), and the ORT outputs."""
    outputs = validate.session(path).run(None, feed)
    with torch.no_grad():
        expected = graph(*[torch.from_numpy(feed[name]) for name in graph.input_names])
    expected = (expected,) if isinstance(expected, torch.Tensor) else expected
    pairs = [(got, want.numpy()) for got, want in zip(outputs, expected, strict=True)]
    worst = max(float(np.abs(got - want).max(initial=0.0)) for got, want in pairs)
    return worst, max(validate.scaled_diff(got, want) for got, want in pairs), outputs


def add_world_model(
    env, export_dir: Path, checkpoint: WamCheckpoint, recording: WorldRecording, samples: int, false_alarm_rate: float
) -> dict:
    """Write ``world_model.onnx`` into ``export_dir``, check it (``onnx.checker``, onnxruntime vs torch on random
    and recorded windows, GRU memory included) and calibrate the monitor on ``recording``; returns the metadata's
    ``world_model`` block."""
    path = export_dir / WORLD_MODEL_FILE
    graph, entry = export_world_model_onnx(checkpoint.model, path, checkpoint.history)
    validate.check_model(path)
    schema, history = checkpoint.schema, checkpoint.history
    feed = random_windows(schema, history, samples, graph=graph)
    if graph.recurrent:
        rng = np.random.default_rng(1)
        feed["memory_in"] = rng.standard_normal((entry["recurrent"]["num_layers"], samples, graph.hidden))
        feed["memory_in"] = feed["memory_in"].astype(np.float32)
    feed = {name: feed[name] for name in graph.input_names}
    parity_random, scaled_random, _ = graph_parity_scaled(graph, path, feed)
    recorded = recording.flat_inputs(graph.input_names)
    if graph.recurrent:
        recorded["memory_in"] = np.zeros((entry["recurrent"]["num_layers"], len(recorded["action"]), graph.hidden))
        recorded["memory_in"] = recorded["memory_in"].astype(np.float32)
    parity_recorded, scaled_recorded, outputs = graph_parity_scaled(graph, path, recorded)
    # outputs in physical units reach tens to hundreds (a reward of 91 on a random window), where float32 values lie
    # 7.6e-6 apart: the tolerance holds relative to max(1, |value|)
    validate.require("random world-model (|diff| / max(1, |value|))", scaled_random)
    validate.require("recorded world-model (|diff| / max(1, |value|))", scaled_recorded)
    named = dict(zip(graph.output_names, outputs, strict=True))
    steps, envs = recording.dones.shape
    terms = state_layout(graph)
    units = _state_units(env, schema)
    for term in terms:
        term["unit"] = units.get(term["name"])
    monitor = calibrate_monitor(
        recording,
        named["delta_mean"].reshape(steps, envs, -1),
        named["delta_std"].reshape(steps, envs, -1),
        terms,
        false_alarm_rate,
    )
    return {
        **entry,
        "source": {"checkpoint": str(checkpoint.path), "kind": checkpoint.kind, "epoch": checkpoint.epoch},
        "state": {
            "group": "world_model",
            "size": schema.state_dim,
            "delta_size": graph.space.delta_dim,
            "rotation": graph.cfg.rotation,
            "quaternion_convention": "xyzw",
            "delta": DELTA_MEANING,
            "terms": terms,
        },
        "instruction": {
            "group": "instruction",
            "size": schema.instruction_dim,
            "terms": [
                {"name": key.rsplit("/", 1)[-1], "key": key, "size": int(np.prod(shape))}
                for key, shape in schema.instruction_keys.items()
            ],
        },
        "action": {
            "size": schema.action_dim,
            "meaning": "the action sent to the env at the window's last step (the raw policy action after "
            "clip_actions, before scale and offset); prev_actions: the action before each window step, 0 before an "
            "episode's first",
        },
        "window": "oldest step first; at an episode's start the window holds copies of the first step, previous "
        "actions 0 (as trained); GRU memory_in zeros at the window's first step",
        "contacts": list(schema.contact_keys),
        "monitor": monitor,
        "validation": {
            "tolerance": validate.TOLERANCE,
            "rule": SCALED_RULE,
            "random": {
                "count": samples,
                "max_abs_diff": parity_random,
                "max_scaled_diff": scaled_random,
                "inputs": RANDOM_WINDOWS,
            },
            "recorded": {
                "count": int(recording.dones.size),
                "max_abs_diff": parity_recorded,
                "max_scaled_diff": scaled_recorded,
            },
        },
    }


def _state_units(env, schema) -> dict[str, str | None]:
    from .layout import UNITS, _short_name

    manager = env.observation_manager
    names = manager.active_terms.get("world_model", [])
    cfgs = dict(zip(names, manager._group_obs_term_cfgs.get("world_model", []), strict=True))
    units = {name: UNITS.get(_short_name(cfg.func)) for name, cfg in cfgs.items()}
    extra = {"root_quat_w": "1 (unit quaternion xyzw)", "joint_pos": "rad (revolute) or m (prismatic)"}
    for name, cfg in cfgs.items():
        units[name] = units[name] or extra.get(_short_name(cfg.func))
    return units


def behaviour_of(env, checkpoint: WamCheckpoint, task: str, world_model_only: bool):
    """The policy driving the calibration rollouts: the WAM's own action head, else the task's scripted expert, else
    uniform random actions."""
    from ..rollout.policies import RandomPolicy, has_expert, load_expert

    if checkpoint.has_policy and not world_model_only:
        model = checkpoint.model
        return (lambda obs, window: model.act(window.states, window.instruction, window.prev_actions)), "wam"
    if has_expert(task):
        expert = load_expert(task, env)
        return (lambda obs, window: expert(obs)), "scripted"
    random = RandomPolicy(env)
    return (lambda obs, window: random(obs)), "random"


def export_wam_env(
    env,
    checkpoint: WamCheckpoint,
    task: str,
    out: Path,
    samples: int = 1000,
    world_model_only: bool = False,
    false_alarm_rate: float = FALSE_ALARM_RATE,
    calibration_steps: int = 200,
):
    """Export ``checkpoint`` with a live ``env`` of ``task``; ``out`` must have passed ``check_out``."""
    from .exporter import ExportResult, base_metadata, publish, write_metadata
    from .layout import action_layout
    from .wam_policy_onnx import export_wam_policy_onnx, wam_observation_layout

    if not checkpoint.has_policy and not world_model_only:
        raise ExportError(
            f"'{checkpoint.path}' is a {checkpoint.kind} world model without a policy head; pass "
            "--world-model-only to export its world model alone"
        )
    checkpoint.model.to(env.device)
    actions = action_layout(env, None)
    _check_schema(env, checkpoint.schema)
    behaviour, behaviour_name = behaviour_of(env, checkpoint, task, world_model_only)
    steps = max(calibration_steps, -(-samples // env.num_envs))
    recording = record_world(env, checkpoint.schema, checkpoint.history, behaviour, steps)
    checkpoint.model.to("cpu")
    tmp = out.resolve().parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        policy_entry, observation, policy_validation = None, None, None
        parity_random = parity_recorded = None
        if not world_model_only:
            graph, policy_entry = export_wam_policy_onnx(
                checkpoint.model, checkpoint.schema, checkpoint.history, tmp / POLICY_FILE
            )
            validate.check_model(tmp / POLICY_FILE)
            observation = wam_observation_layout(env, checkpoint.schema, checkpoint.history, actions["joint_names"])
            arrays = (recording.states, recording.instruction, recording.prev_actions)
            windows = graph.window(*(torch.from_numpy(array).flatten(0, 1) for array in arrays)).numpy()
            random_obs = validate.random_observations(windows, samples, np.random.default_rng(0))
            parity_random, _ = graph_parity(graph, tmp / POLICY_FILE, {"obs": random_obs})
            (got,) = validate.session(tmp / POLICY_FILE).run(None, {"obs": windows})
            parity_recorded = float(np.abs(got - recording.actions.reshape(len(windows), -1)).max())
            validate.require("random", parity_random)
            validate.require("recorded", parity_recorded)
            policy_validation = {
                "tolerance": validate.TOLERANCE,
                "random": {"count": samples, "max_abs_diff": parity_random, "inputs": validate.RANDOM_OBSERVATIONS},
                "recorded": {"count": int(recording.dones.size), "max_abs_diff": parity_recorded},
            }
        world_model = add_world_model(env, tmp, checkpoint, recording, samples, false_alarm_rate)
        world_model["monitor"]["behaviour"] = behaviour_name
        source = {"checkpoint": str(checkpoint.path), "kind": checkpoint.kind, "epoch": checkpoint.epoch}
        metadata = base_metadata(env, task, source, actions)
        metadata.update(policy=policy_entry, observation=observation, world_model=world_model)
        metadata["validation"] = policy_validation
        metadata = write_metadata(tmp, metadata)
        publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, metadata, parity_random, parity_recorded)


def _check_schema(env, schema) -> None:
    """Raise unless the env's ``world_model`` / ``instruction`` groups have the model's terms and shapes."""
    obs = env.observation_manager.compute()
    for group, keys in (("world_model", schema.state_keys), ("instruction", schema.instruction_keys)):
        for key, shape in keys.items():
            name = key.rsplit("/", 1)[-1]
            value = obs.get(group, {}).get(name) if isinstance(obs.get(group), dict) else None
            if value is None:
                raise ExportError(f"the model reads {key}; the task's '{group}' group has no term '{name}'")
            if int(value[0].numel()) != int(np.prod(shape)):
                raise ExportError(f"{key}: the model expects shape {shape}, the task gives {list(value.shape[1:])}")
