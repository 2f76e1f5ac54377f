"""``world_model.onnx``: a ``wam train-model`` world model (single, ensemble, or the one inside a joint or cascaded
WAM) as one ONNX graph predicting the next step from a window of history.

Inputs (batch dimension ``batch``, time dimension ``time``: the window, oldest step first):

- ``states`` (batch, time, S): the state terms of the task's ``world_model`` group in physical units, in the
  schema's order (quaternions xyzw);
- ``instruction`` (batch, time, I) (absent when the task has none), ``prev_actions`` (batch, time, A): the action
  taken at the step before each state (zeros before the first step of an episode);
- ``action`` (batch, A): the action taken at the window's last step;
- ``memory_in`` (K * layers, batch, hidden), GRU trunks only: the hidden state before the window's first step (zeros
  = the start of a window, as trained; a caller streaming one step at a time feeds ``memory_out`` back).

Outputs, for the step after the window's last: ``next_state`` (batch, S), the state reached by the mean change;
``delta_mean`` and ``delta_std`` (batch, D), the predicted change in physical units (the model's StateSpace change:
``s_{t+1} - s_t`` for vector terms, the rotation vector ``log(q_{t+1} q_t^-1)`` [rad, world frame] for quaternion
terms); for an ensemble of K members, the mean of the members' means and the total standard deviation
(``sqrt(mean_k std_k^2 + var_k mean_k)``), and ``epistemic_std`` (batch, D) the spread of the members' means (zero
for K = 1); ``reward`` (batch, 1) in reward units; ``termination_prob`` (batch, 1); ``contact_prob`` (batch, C) (absent
without contact labels); ``memory_out`` (GRU only). The normalizers are inside the graph.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from .onnx_policy import graph_entry, write_onnx

WORLD_MODEL_FILE = "world_model.onnx"


def world_model_members(model: nn.Module) -> list[nn.Module]:
    """The world models (one per ensemble member) inside any ``wam train-model`` model."""
    from ..models.wam import world_model_of
    from ..models.world_model import EnsembleWorldModel

    world_model = world_model_of(model)
    return list(world_model.members) if isinstance(world_model, EnsembleWorldModel) else [world_model]


class WorldModelGraph(nn.Module):
    """The exported computation (see the module docstring); ``forward`` takes the inputs in :attr:`input_names`
    order."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.members = nn.ModuleList(world_model_members(model))
        first = self.members[0]
        self.schema, self.cfg, self.space = first.schema, first.cfg, first.space
        self.recurrent = self.cfg.trunk.kind == "gru"
        self.layers = first.trunk.gru.num_layers if self.recurrent else 0
        self.hidden = self.cfg.trunk.hidden
        self.has_instruction = self.schema.instruction_dim > 0
        self.has_contacts = self.schema.contact_dim > 0
        self.input_names = ["states", *(["instruction"] if self.has_instruction else []), "prev_actions", "action"]
        self.input_names += ["memory_in"] if self.recurrent else []
        self.output_names = ["next_state", "delta_mean", "delta_std", "epistemic_std", "reward", "termination_prob"]
        self.output_names += (["contact_prob"] if self.has_contacts else []) + (
            ["memory_out"] if self.recurrent else []
        )

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        named = dict(zip(self.input_names, inputs, strict=True))
        states, prev_actions, action = named["states"], named["prev_actions"], named["action"]
        instruction = named.get("instruction", states[..., :0])
        n = self.members[0].normalizers  # shared by every member
        tokens = self.members[0].tokens(states, instruction, prev_actions)
        memory = named.get("memory_in")
        means, variances, rewards, terminations, contacts, memories = [], [], [], [], [], []
        for k, member in enumerate(self.members):
            start = None if memory is None else memory[k * self.layers : (k + 1) * self.layers]
            features, after = member.encode(tokens, start)
            prediction = member.predict_next(features[:, -1], action)
            means.append(n.delta.inverse(prediction.delta_mean))
            variances.append((prediction.delta_log_std.exp() * n.delta.std).square())
            rewards.append(n.reward.inverse(prediction.reward))
            terminations.append(torch.sigmoid(prediction.termination_logit))
            contacts.append(torch.sigmoid(prediction.contact_logits))
            memories.append(after)
        members = torch.stack(means)
        mean = members.mean(0)
        epistemic = (members - mean).square().mean(0)
        std = (torch.stack(variances).mean(0) + epistemic).sqrt()
        outputs = [
            self.space.compose(states[:, -1], mean),
            mean,
            std,
            epistemic.sqrt(),
            torch.stack(rewards).mean(0),
            torch.stack(terminations).mean(0),
        ]
        outputs += [torch.stack(contacts).mean(0)] if self.has_contacts else []
        outputs += [torch.cat(memories, dim=0)] if self.recurrent else []
        return tuple(outputs)

    def dummy_inputs(self, batch: int = 2, time: int = 3) -> tuple[torch.Tensor, ...]:
        """Inputs of the right shapes (unit quaternions where the state holds them)."""
        s = self.schema
        states = torch.zeros(batch, time, s.state_dim)
        for term in s.quaternion_slices():
            states[..., term.stop - 1] = 1.0
        shapes = {
            "states": None,
            "instruction": (batch, time, s.instruction_dim),
            "prev_actions": (batch, time, s.action_dim),
            "action": (batch, s.action_dim),
            "memory_in": (len(self.members) * self.layers, batch, self.hidden),
        }
        return tuple(states if name == "states" else torch.zeros(shapes[name]) for name in self.input_names)


def state_layout(graph: WorldModelGraph) -> list[dict]:
    """Each state term: name, dataset key, its slices of the state and of the change vectors, and whether its change
    is a rotation vector."""
    terms = []
    for layout in graph.space.layouts:
        terms.append(
            {
                "name": layout.term.name,
                "key": layout.term.key,
                "state_slice": [layout.state.start, layout.state.stop],
                "delta_slice": [layout.delta.start, layout.delta.stop],
                "rotation": bool(layout.rotation),
                "quaternion": "xyzw" if layout.term.name.endswith("quat") and layout.term.size == 4 else None,
            }
        )
    return terms


def export_world_model_onnx(model: nn.Module, path: str | Path, history: int) -> tuple[WorldModelGraph, dict]:
    """Write ``model``'s world model to ``path``; return the graph (eval mode, CPU) and the file's entry of the
    metadata's ``world_model`` block (inputs, outputs, recurrent state), without units or calibration."""
    graph = WorldModelGraph(model).to("cpu").eval()
    transformer = graph.cfg.trunk.kind == "transformer"
    dummy = graph.dummy_inputs(time=history)
    dynamic = {name: {0: "batch"} for name in graph.input_names + graph.output_names}
    for name in ("states", "instruction", "prev_actions"):
        if name in dynamic and not transformer:  # a transformer's positions are traced for a window of `history`
            dynamic[name] = {0: "batch", 1: "time"}
    for name in ("memory_in", "memory_out"):
        if name in dynamic:
            dynamic[name] = {1: "batch"}
    # torch's fused transformer kernel (used in eval mode) has no ONNX form: a transformer trunk is traced in train
    # mode, which is the same computation here (no dropout, no batch statistics anywhere in the model)
    mode = torch.onnx.TrainingMode.PRESERVE if transformer else torch.onnx.TrainingMode.EVAL
    graph.train(transformer)
    try:
        proto = write_onnx(
            graph,
            dummy,
            path,
            graph.input_names,
            graph.output_names,
            dynamic,
            what=f"the {graph.cfg.trunk.kind} world model",
            training=mode,
        )
    finally:
        graph.eval()
    entry = {
        **graph_entry(path, proto),
        "history": int(history),
        "window_fixed": transformer,
        "ensemble": len(graph.members),
        "trunk": graph.cfg.trunk.kind,
        "recurrent": (
            {"type": "gru", "num_layers": len(graph.members) * graph.layers, "hidden_size": graph.hidden}
            if graph.recurrent
            else None
        ),
        "normalizer_in_graph": True,
    }
    return graph, entry
