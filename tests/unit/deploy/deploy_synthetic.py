"""Synthetic exports for the deploy runtime's tests: a small rsl-rl actor written by the exporter's own functions,
with hand-written metadata exercising clip, scale (scalar and per element), history, joint names, the last action,
rsl-rl's action clip, scale/offset and joint limits. No simulator."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from rsl_rl.models import MLPModel, RNNModel
from tensordict import TensorDict

from wam_isaac.export.exporter import write_metadata
from wam_isaac.export.onnx_policy import export_policy_onnx

JOINTS = ["j_a", "j_b", "j_c"]
OBS_DIM = 14
ACTION_DIM = 3

OBSERVATION = {
    "groups": ["policy"],
    "size": OBS_DIM,
    "history_order": "term",
    "terms": [
        {"name": "base_ang_vel", "slice": [0, 3], "shape": [3], "history_length": 0, "clip": None, "scale": 0.25,
         "joint_names": None, "source": "robot"},
        {"name": "joint_pos", "slice": [3, 9], "shape": [3], "history_length": 2, "clip": [-1.0, 1.0],
         "scale": None, "joint_names": JOINTS, "source": "robot"},
        {"name": "command", "slice": [9, 11], "shape": [2], "history_length": 0, "clip": None, "scale": [2.0, 0.5],
         "joint_names": None, "source": "robot"},
        {"name": "actions", "slice": [11, 14], "shape": [3], "history_length": 0, "clip": None, "scale": None,
         "joint_names": JOINTS, "source": "last_action"},
    ],
}  # fmt: skip

ACTION = {
    "dim": ACTION_DIM,
    "pipeline": "runtime",
    "clip_actions": 5.0,
    "joint_names": JOINTS,
    "terms": [
        {"name": "joint_pos", "kind": "joint_position", "slice": [0, 3], "joint_names": JOINTS,
         "scale": [0.25, 0.25, 0.5], "offset": [0.1, -0.2, 0.3], "clip": None},
    ],
    "limits": {"lower": [-0.5, -0.5, -0.5], "upper": [0.6, 0.6, 0.6]},
}  # fmt: skip


def make_actor(recurrent: str | None = None, seed: int = 0) -> torch.nn.Module:
    """An rsl-rl actor over a 14-dim policy group with a non-trivial observation normalizer."""
    torch.manual_seed(seed)
    obs = TensorDict({"policy": torch.zeros(1, OBS_DIM)}, batch_size=[1])
    kwargs = dict(
        hidden_dims=(32, 32),
        obs_normalization=True,
        distribution_cfg={"class_name": "GaussianDistribution", "init_std": 1.0},
    )
    if recurrent is None:
        actor = MLPModel(obs, {"actor": ["policy"]}, "actor", ACTION_DIM, **kwargs)
    else:
        actor = RNNModel(
            obs, {"actor": ["policy"]}, "actor", ACTION_DIM, rnn_type=recurrent, rnn_hidden_dim=8, **kwargs
        )
    actor.obs_normalizer._mean.uniform_(-0.5, 0.5)
    actor.obs_normalizer._std.uniform_(0.5, 2.0)
    for param in actor.mlp.parameters():  # larger weights: actions that reach the clips and limits
        param.data.mul_(3.0)
    return actor.eval()


def write_synthetic_export(directory: Path, actor, observation=OBSERVATION, action=ACTION) -> dict:
    """``policy.onnx`` + ``metadata.json`` for ``actor`` with the given layouts; returns the metadata."""
    directory.mkdir(parents=True, exist_ok=True)
    policy = export_policy_onnx(actor, directory / "policy.onnx")
    metadata = {
        "schema": "wam_isaac.export",
        "schema_version": 1,
        "task": "synthetic",
        "policy": policy,
        "observation": copy.deepcopy(observation),
        "action": copy.deepcopy(action),
        "control": {"physics_dt": 0.005, "decimation": 4, "control_period": 0.02},
        "robot": {"joint_names": JOINTS, "pd_gains": {name: {"stiffness": 25.0, "damping": 0.5} for name in JOINTS}},
        "world_model": None,
    }
    return write_metadata(directory, metadata)


class ReferencePolicy:
    """The same policy computed independently: numpy layout by hand, the torch actor, the action pipeline by hand."""

    def __init__(self, actor):
        self.actor = actor
        self.reset()

    def reset(self) -> None:
        self.history = None
        self.last_action = np.zeros(ACTION_DIM)
        self.actor.reset()

    def step(self, terms: dict[str, np.ndarray]) -> np.ndarray:
        joint = np.clip(terms["joint_pos"], -1.0, 1.0)
        self.history = np.stack([joint, joint]) if self.history is None else np.stack([self.history[1], joint])
        obs = np.concatenate(
            [
                terms["base_ang_vel"] * 0.25,
                self.history.reshape(-1),
                terms["command"] * np.array([2.0, 0.5]),
                self.last_action,
            ]
        )
        with torch.inference_mode():
            batch = TensorDict({"policy": torch.tensor(obs, dtype=torch.float32)[None]}, batch_size=[1])
            raw = self.actor(batch)[0].double().numpy()
        self.last_action = np.clip(raw, -5.0, 5.0)
        targets = self.last_action * np.array([0.25, 0.25, 0.5]) + np.array([0.1, -0.2, 0.3])
        return np.clip(targets, -0.5, 0.6)


def random_terms(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """One step's raw terms, float64, large enough to hit the joint clip."""
    return {
        "base_ang_vel": rng.normal(0.0, 2.0, 3),
        "joint_pos": rng.normal(0.0, 1.0, 3),
        "command": rng.normal(0.0, 1.0, 2),
    }
