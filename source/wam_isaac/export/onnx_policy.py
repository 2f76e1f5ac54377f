"""``policy.onnx`` through rsl-rl's own export path (``model.as_onnx()``), with a dynamic batch dimension.

rsl-rl's ``as_onnx`` copy holds the observation normalizer and the deterministic output (the Gaussian's mean);
recurrent models take and return their hidden state (``obs, h_in[, c_in] -> actions, h_out[, c_out]``, state shape
``(layers, batch, hidden)``). rsl-rl's runner exports it with torch's default (dynamo) exporter, which writes IR
version 10 and a batch of one; here the TorchScript exporter (``dynamo=False``) writes IR 8 at opset
:data:`OPSET`, readable by onnxruntime 1.14 and later, with ``batch`` as a named dynamic axis.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch

from ..deploy.schema import METADATA_PROPS_KEY, SCHEMA_VERSION
from .errors import ExportError

OPSET = 17
"""ONNX opset of ``policy.onnx``."""

MAX_IR_VERSION = 9
"""Older onnxruntime builds on robots read IR <= 9."""


def export_policy_onnx(actor: torch.nn.Module, path: str | Path) -> dict:
    """Write the actor's deterministic ONNX graph to ``path``; return the metadata's ``policy`` entry."""
    model = actor.as_onnx(verbose=False)
    model = model.to("cpu").eval()
    inputs = model.get_dummy_inputs()
    input_names, output_names = list(model.input_names), list(model.output_names)
    dynamic_axes = {"obs": {0: "batch"}, "actions": {0: "batch"}}
    for name in input_names[1:] + output_names[1:]:
        dynamic_axes[name] = {1: "batch"}  # hidden states are (layers, batch, hidden)
    proto = write_onnx(model, inputs, path, input_names, output_names, dynamic_axes, what="the policy")
    recurrent = None
    if getattr(model, "is_recurrent", False):
        state = inputs[1]  # (layers, batch, hidden); rsl-rl's RNN copies also name it, a joint WAM's copy does not
        recurrent = {
            "type": getattr(model, "rnn_type", "gru" if len(input_names) == 2 else "lstm"),
            "num_layers": int(state.shape[0]),
            "hidden_size": int(state.shape[-1]),
            "state_inputs": input_names[1:],
            "state_outputs": output_names[1:],
        }
    return {
        **graph_entry(path, proto),
        "recurrent": recurrent,
        "normalizer_in_graph": bool(getattr(actor, "obs_normalization", False) or hasattr(actor, "wam")),
        "deterministic": True,
        "action_pipeline": "runtime",
        "model_class": type(actor).__name__,
    }


def write_onnx(
    graph: torch.nn.Module,
    inputs: tuple,
    path: str | Path,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict,
    what: str,
    training=torch.onnx.TrainingMode.EVAL,
) -> onnx.ModelProto:
    """Export ``graph`` with the TorchScript exporter at :data:`OPSET` (IR <= :data:`MAX_IR_VERSION`), its tracing
    chatter silenced, and return the written model. Raises a one-line :class:`ExportError` naming ``what`` when
    torch cannot export it or writes a newer IR version."""
    with torch.no_grad(), warnings.catch_warnings():
        # tracing chatter: size checks become constants; the RNN batch warning does not apply since initial states
        # are graph inputs; the TorchScript exporter is chosen on purpose (IR 8, named dynamic axes)
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting a model to ONNX with a batch_size other than 1")
        warnings.filterwarnings("ignore", message="You are using the legacy TorchScript-based ONNX export")
        warnings.filterwarnings("ignore", message="It is recommended that constant folding be turned off")
        warnings.filterwarnings("ignore", message=".*enable_nested_tensor.*")
        try:
            torch.onnx.export(
                graph,
                inputs,
                str(path),
                export_params=True,
                opset_version=OPSET,
                input_names=input_names,
                output_names=output_names,
                dynamic_axes=dynamic_axes,
                training=training,
                dynamo=False,
            )
            traced = graph(*inputs)
        except Exception as error:  # torch's exporter raises many types; one line names the model that failed
            raise ExportError(f"{what} does not export to ONNX: {str(error).splitlines()[0][:160]}") from None
    proto = onnx.load(str(path))
    if proto.ir_version > MAX_IR_VERSION:
        raise ExportError(f"torch wrote ONNX IR version {proto.ir_version}; robots' onnxruntime reads <= 9")
    if fix_static_output_dims(proto, [tuple(t.shape) for t in _tensors(traced)], dynamic_axes):
        onnx.save(proto, str(path))
    return proto


def _tensors(value) -> list[torch.Tensor]:
    """The tensors of a traced output in the exporter's order (nested tuples flattened, ``None`` dropped)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, tuple | list):
        return [t for item in value for t in _tensors(item)]
    return []


def fix_static_output_dims(proto: onnx.ModelProto, shapes: list[tuple], dynamic_axes: dict) -> bool:
    """Give every output dimension that is not a dynamic axis its traced size (``shapes``, in output order) where
    the exporter left a generated symbol (e.g. ``Expandactions_dim_1`` for the action size of a joint WAM's actor):
    the declared shape then says what a robot reads. Returns whether anything changed."""
    changed = False
    for value, shape in zip(proto.graph.output, shapes, strict=True):
        dynamic = dynamic_axes.get(value.name, {})
        for axis, dim in enumerate(value.type.tensor_type.shape.dim):
            if axis not in dynamic and dim.dim_param and axis < len(shape):
                dim.dim_value = int(shape[axis])  # clears dim_param (a oneof)
                changed = True
    return changed


def graph_entry(path: str | Path, proto: onnx.ModelProto) -> dict:
    """The metadata fields every exported graph has: file, format, opset, IR version, input and output shapes."""
    return {
        "file": Path(path).name,
        "format": "onnx",
        "opset": OPSET,
        "ir_version": int(proto.ir_version),
        "inputs": [_shape_entry(value) for value in proto.graph.input],
        "outputs": [_shape_entry(value) for value in proto.graph.output],
    }


def _shape_entry(value) -> dict:
    dims = [d.dim_param if d.dim_param else int(d.dim_value) for d in value.type.tensor_type.shape.dim]
    return {"name": value.name, "shape": dims, "dtype": "float32"}


def attach_metadata(path: str | Path, embedded: dict) -> None:
    """Store ``embedded`` (JSON, full precision) and the schema version in the file's ``metadata_props``."""
    proto = onnx.load(str(path))
    del proto.metadata_props[:]
    entries = {METADATA_PROPS_KEY: json.dumps(embedded), "wam_isaac.schema_version": str(SCHEMA_VERSION)}
    for key, value in entries.items():
        prop = proto.metadata_props.add()
        prop.key, prop.value = key, value
    onnx.save(proto, str(path))


def read_metadata_props(path: str | Path) -> dict[str, str]:
    """The ``metadata_props`` of an ONNX file as a dict."""
    return {prop.key: prop.value for prop in onnx.load(str(path)).metadata_props}
