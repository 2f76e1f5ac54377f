"""``policy.onnx`` for a ``wam train-model`` joint or cascaded WAM: its action head, acting as it does in closed loop.

In closed loop (``wam eval``) the WAM acts on a window of the last ``H`` steps, re-encoded from the start of the
window at every step: the state (the ``world_model`` group's terms), the instruction and the previous action of each
step, oldest first; after a reset the window holds ``H`` copies of the first step with previous actions 0. The graph
takes that window as one flat ``obs`` input, time-major (frame after frame; a frame is the state terms, the
instruction terms, then the previous action), so the deploy runtime assembles it from named terms with the same
history rules it applies to any policy (a fresh history fills with the first frame; ``last_action`` is its own
previous output). The output ``actions`` is the mean action in the env's action units.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from ..models.schema import WamSchema
from .errors import ExportError
from .onnx_policy import graph_entry, write_onnx

LAST_ACTION_TERM = "last_action"
"""Name of the previous-action term of a WAM policy's observation."""


class WindowPolicyGraph(nn.Module):
    """Flat time-major window (batch, H * (S + I + A)) -> the WAM's mean action (batch, A)."""

    input_names = ["obs"]
    output_names = ["actions"]

    def __init__(self, model: nn.Module, schema: WamSchema, history: int):
        super().__init__()
        self.model, self.history = model, history
        self.sizes = [schema.state_dim, schema.instruction_dim, schema.action_dim]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        frames = obs.reshape(-1, self.history, sum(self.sizes))
        states, instruction, prev_actions = frames.split(self.sizes, dim=-1)
        return self.model.act(states, instruction, prev_actions)

    def window(self, states: torch.Tensor, instruction: torch.Tensor, prev_actions: torch.Tensor) -> torch.Tensor:
        """The flat input of windows (B, H, ·)."""
        return torch.cat((states, instruction, prev_actions), dim=-1).reshape(states.shape[0], -1)


def export_wam_policy_onnx(model: nn.Module, schema: WamSchema, history: int, path: str | Path) -> tuple:
    """Write the WAM's window policy to ``path``; return the graph (eval, CPU) and the metadata's ``policy`` entry."""
    graph = WindowPolicyGraph(model, schema, history).to("cpu").eval()
    transformer = model.cfg.trunk.kind == "transformer"
    mode = torch.onnx.TrainingMode.PRESERVE if transformer else torch.onnx.TrainingMode.EVAL
    graph.train(transformer)  # see world_model_onnx: the fused transformer kernel has no ONNX form
    dummy = torch.zeros(2, history * sum(graph.sizes))
    try:
        proto = write_onnx(
            graph,
            (dummy,),
            path,
            graph.input_names,
            graph.output_names,
            {"obs": {0: "batch"}, "actions": {0: "batch"}},
            what=f"the {model.cfg.kind} WAM's policy",
            training=mode,
        )
    finally:
        graph.eval()
    entry = {
        **graph_entry(path, proto),
        "recurrent": None,
        "window": {"history": int(history), "frame": ["state", "instruction", LAST_ACTION_TERM]},
        "normalizer_in_graph": True,
        "deterministic": True,
        "action_pipeline": "runtime",
        "model_class": type(model).__name__,
    }
    return graph, entry


def wam_observation_layout(env, schema: WamSchema, history: int, action_joint_names: list[str]) -> dict:
    """The flat window as observation terms: every state and instruction term of ``schema`` (read from the env's
    ``world_model`` and ``instruction`` groups: function, unit, clip, scale) and the previous action, each with a
    history of ``history`` frames, time-major."""
    from .jsonable import callable_name, jsonable
    from .layout import UNITS, _short_name

    manager = env.observation_manager
    cfgs = {}
    for group in ("world_model", "instruction"):
        if group in manager.active_terms:
            cfgs.update(
                {
                    (group, n): c
                    for n, c in zip(manager.active_terms[group], manager._group_obs_term_cfgs[group], strict=True)
                }
            )
    terms, start = [], 0
    keys = [("world_model", key, shape) for key, shape in schema.state_keys.items()]
    keys += [("instruction", key, shape) for key, shape in schema.instruction_keys.items()]
    for group, key, shape in keys:
        name = key.rsplit("/", 1)[-1]
        cfg = cfgs.get((group, name))
        if cfg is None:
            raise ExportError(f"the model reads {key}, which the task's '{group}' observation group does not have")
        size = int(torch.Size(shape).numel())
        terms.append(
            _term(name, group, start, size, history, callable_name(cfg.func), UNITS.get(_short_name(cfg.func)))
        )
        terms[-1].update(clip=jsonable(cfg.clip), scale=jsonable(cfg.scale), params=jsonable(dict(cfg.params)))
        terms[-1]["joint_names"] = _joint_names(env, cfg, size)
        start += size * history
    action = _term(LAST_ACTION_TERM, "previous_action", start, schema.action_dim, history, None, "action units")
    action.update(source="last_action", joint_names=list(action_joint_names))
    terms.append(action)
    names = [term["name"] for term in terms]
    if len(set(names)) != len(names):
        raise ExportError(f"the WAM's state and instruction terms repeat a name ({names}); the runtime keys by name")
    return {
        "groups": ["world_model", "instruction"],
        "size": start + schema.action_dim * history,
        "history_order": "time" if history > 1 else "term",
        "terms": terms,
    }


def _term(name: str, group: str, start: int, size: int, history: int, func, unit) -> dict:
    """A term of the window (its ``slice`` spans its frames, which interleave with the others' in time-major
    order: the slice is where its values would sit term-major and only tells the size)."""
    return {
        "name": name,
        "group": group,
        "slice": [start, start + size * history],
        "shape": [size],
        "history_length": history if history > 1 else 0,
        "func": func,
        "unit": unit,
        "clip": None,
        "scale": None,
        "noise": None,
        "delay": None,
        "joint_names": None,
        "source": "robot",
        "params": {},
    }


def _joint_names(env, cfg, size: int) -> list[str] | None:
    asset_cfg = cfg.params.get("asset_cfg")
    if asset_cfg is None or not getattr(cfg.func, "__name__", "").startswith("joint_"):
        return None
    asset = env.scene[asset_cfg.name]
    ids = asset_cfg.joint_ids
    names = list(asset.joint_names) if isinstance(ids, slice) else [asset.joint_names[int(i)] for i in ids]
    return names if len(names) == size else None
