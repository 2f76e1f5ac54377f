"""Checks before an export is published: ``onnx.checker``, then onnxruntime against the torch policy on random and
on recorded observations (max |diff| of the actions, and of the hidden states for recurrent policies)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import torch
from tensordict import TensorDict

from .errors import ExportError

TOLERANCE = 1e-5
"""Largest |onnxruntime - torch| accepted on any action (or hidden-state) element."""


@dataclass
class Recording:
    """A rollout of the env under the torch policy: what the policy saw and did, step by step."""

    observations: np.ndarray
    """Flat policy inputs, float32, shape (steps, num_envs, obs_dim)."""
    actions: np.ndarray
    """The torch policy's deterministic actions, float32, shape (steps, num_envs, action_dim)."""
    dones: np.ndarray
    """Episode ends after each step (the recurrent state resets), bool, shape (steps, num_envs)."""


def check_model(path: str | Path) -> None:
    """``onnx.checker`` on the file (full check, with shape inference)."""
    try:
        onnx.checker.check_model(str(path), full_check=True)
    except onnx.checker.ValidationError as error:
        raise ExportError(f"onnx.checker rejected {path}: {str(error).splitlines()[0]}") from None


def session(path: str | Path) -> onnxruntime.InferenceSession:
    """A single-threaded CPU onnxruntime session."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def torch_actions(
    actor, group_sizes: list[tuple[str, int]], obs: torch.Tensor, hidden=None
) -> tuple[torch.Tensor, object]:
    """The actor's deterministic actions on flat observations (split into its groups, ``(name, size)`` in order),
    and its new hidden state."""
    device = next(actor.parameters()).device
    obs = obs.to(device)
    if isinstance(hidden, tuple):
        hidden = tuple(h.to(device) for h in hidden)
    elif hidden is not None:
        hidden = hidden.to(device)
    groups, start, batch = {}, 0, obs.shape[0]
    for name, size in group_sizes:
        groups[name] = obs[:, start : start + size]
        start += size
    with torch.inference_mode():
        if actor.is_recurrent and hasattr(actor, "rnn"):
            actor.rnn.hidden_state = hidden
        elif actor.is_recurrent:  # a joint WAM's actor keeps its GRU memory itself
            actor.hidden_state = hidden
        actions = actor(TensorDict(groups, batch_size=[batch], device=device))
        return actions, (actor.get_hidden_state() if actor.is_recurrent else None)


def _ort_state(policy_entry: dict, batch: int) -> dict[str, np.ndarray]:
    recurrent = policy_entry["recurrent"]
    if recurrent is None:
        return {}
    shape = (recurrent["num_layers"], batch, recurrent["hidden_size"])
    return {name: np.zeros(shape, dtype=np.float32) for name in recurrent["state_inputs"]}


def _torch_state(state: dict[str, np.ndarray]):
    tensors = [torch.from_numpy(value) for value in state.values()]
    if not tensors:
        return None
    return tensors[0] if len(tensors) == 1 else tuple(tensors)


RANDOM_OBSERVATIONS = "mean + 3 max(std, 1e-3) N(0, 1) of the recorded observations, per entry"
"""How the random observations of the policy's parity check are drawn when a recording is given (in the metadata)."""


def random_observations(observed: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` random observations, (count, D) float32, each entry drawn from ``mean + 3 max(std, 1e-3) N(0, 1)``
    of ``observed`` (..., D): the span of what the policy sees, whatever the units (a cube's height varies by
    millimetres, a joint by radians). ``N(0, 3^2)`` in raw units would put such entries thousands of stds out, where
    float32 rounding inside the network, not the export, decides the comparison."""
    flat = np.asarray(observed, dtype=np.float64).reshape(-1, observed.shape[-1])
    centre, spread = flat.mean(0), 3.0 * np.maximum(flat.std(0), 1e-3)
    return (centre + spread * rng.standard_normal((count, flat.shape[1]))).astype(np.float32)


def parity_random(
    actor,
    group_sizes: list[tuple[str, int]],
    path: str | Path,
    policy_entry: dict,
    count: int,
    seed: int = 0,
    observed: np.ndarray | None = None,
) -> float:
    """Max |diff| of actions (and hidden states) between onnxruntime and torch on ``count`` random observations and,
    for recurrent policies, random hidden states. The observations are drawn around ``observed`` (recorded
    observations, (..., D): :func:`random_observations`) if given, else standard normal times 3."""
    rng = np.random.default_rng(seed)
    obs_dim = sum(size for _, size in group_sizes)
    if observed is not None:
        obs = random_observations(observed, count, rng)
    else:
        obs = (3.0 * rng.standard_normal((count, obs_dim))).astype(np.float32)
    zeros = _ort_state(policy_entry, count)
    state = {name: rng.standard_normal(value.shape).astype(np.float32) for name, value in zeros.items()}
    outputs = session(path).run(None, {"obs": obs, **state})
    expected, hidden = torch_actions(actor, group_sizes, torch.from_numpy(obs), _torch_state(state))
    worst = float(np.abs(outputs[0] - expected.cpu().numpy()).max())
    if hidden is not None:
        hidden = hidden if isinstance(hidden, tuple) else (hidden,)
        for got, want in zip(outputs[1:], hidden, strict=True):
            worst = max(worst, float(np.abs(got - want.cpu().numpy()).max()))
    return worst


def parity_recorded(path: str | Path, policy_entry: dict, recording: Recording) -> float:
    """Max |diff| between onnxruntime, stepped through the recording with its state carried (reset where an episode
    ended), and the actions the torch policy took during the rollout."""
    run = session(path)
    steps, batch, _ = recording.observations.shape
    state = _ort_state(policy_entry, batch)
    names = list(state)
    worst = 0.0
    for t in range(steps):
        outputs = run.run(None, {"obs": recording.observations[t], **state})
        worst = max(worst, float(np.abs(outputs[0] - recording.actions[t]).max()))
        for name, value in zip(names, outputs[1:], strict=True):
            value = value.copy()
            value[:, recording.dones[t]] = 0.0
            state[name] = value
    return worst


def scaled_diff(got: np.ndarray, want: np.ndarray) -> float:
    """Max over elements of ``|got - want| / max(1, |want|)``: the absolute difference for values up to 1, the
    relative one above (float32 values of 100 lie 7.6e-6 apart, so no absolute bound of 1e-5 holds for them)."""
    want = np.asarray(want, dtype=np.float64)
    diff = np.abs(np.asarray(got, dtype=np.float64) - want) / np.maximum(1.0, np.abs(want))
    return float(diff.max(initial=0.0))


def require(name: str, value: float) -> None:
    """Raise unless a parity figure is within :data:`TOLERANCE`."""
    if not value <= TOLERANCE:
        raise ExportError(f"onnxruntime differs from torch by {value:.3g} on {name} observations (> {TOLERANCE})")
