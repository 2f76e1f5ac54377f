"""A ``wam train-model`` joint or cascaded WAM exported as ``policy.onnx`` and driven by the deploy runtime from named
terms reproduces the closed loop's actions (``model.act`` on :class:`HistoryWindow` windows, refilled at resets),
step by step across an episode end. No simulator: a stand-in observation manager carries the term configs."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch

from wam_isaac.deploy import BadObservation, Policy
from wam_isaac.evaluation.closed_loop import HistoryWindow
from wam_isaac.export.exporter import write_metadata
from wam_isaac.export.wam_policy_onnx import export_wam_policy_onnx, wam_observation_layout
from wam_isaac.models import WamSchema, build_model, model_cfg

SCHEMA = WamSchema(
    state_keys={"obs/world_model/joint_pos": [2], "obs/world_model/cube_quat": [4]},
    instruction_keys={"obs/instruction/goal": [2]},
    action_shape=[2],
)
HISTORY = 3
JOINTS = ["shoulder", "elbow"]


def stand_in_env():
    def cfg(name):
        return SimpleNamespace(func=SimpleNamespace(__name__=name, __module__="isaaclab.envs.mdp", __qualname__=name),
                               params={}, clip=None, scale=None)  # fmt: skip

    manager = SimpleNamespace(
        active_terms={"world_model": ["joint_pos", "cube_quat"], "instruction": ["goal"]},
        _group_obs_term_cfgs={
            "world_model": [cfg("joint_pos"), cfg("root_quat_w")],
            "instruction": [cfg("generated_commands")],
        },
    )
    return SimpleNamespace(observation_manager=manager)


def export(kind: str, directory):
    torch.manual_seed(0)
    cfg = model_cfg(kind, head_hidden=16, policy_hidden=16, cascade_horizon=2)
    cfg.trunk.hidden = 16
    model = build_model(SCHEMA, cfg).eval()
    directory.mkdir()
    _, entry = export_wam_policy_onnx(model, SCHEMA, HISTORY, directory / "policy.onnx")
    observation = wam_observation_layout(stand_in_env(), SCHEMA, HISTORY, JOINTS)
    action = {
        "dim": 2, "pipeline": "runtime", "clip_actions": None, "joint_names": JOINTS,
        "terms": [{"name": "arm", "kind": "joint_position", "slice": [0, 2], "joint_names": JOINTS,
                   "scale": [1.0, 1.0], "offset": [0.1, -0.2], "clip": None}],
        "limits": {"lower": [-10.0, -10.0], "upper": [10.0, 10.0]},
    }  # fmt: skip
    metadata = {
        "schema": "wam_isaac.export", "schema_version": 1, "task": "synthetic", "policy": entry,
        "observation": observation, "action": action, "control": {}, "robot": {}, "world_model": None,
    }  # fmt: skip
    write_metadata(directory, metadata)
    return model, observation


@pytest.mark.parametrize("kind", ["joint", "cascaded"])
def test_runtime_reproduces_the_closed_loop_actions(kind, tmp_path):
    model, observation = export(kind, tmp_path / kind)
    assert [t["name"] for t in observation["terms"]] == ["joint_pos", "cube_quat", "goal", "last_action"]
    assert observation["history_order"] == "time" and observation["size"] == HISTORY * (2 + 4 + 2 + 2)
    assert observation["terms"][-1]["source"] == "last_action"
    policy = Policy.load(tmp_path / kind)
    assert policy.term_names == ["joint_pos", "cube_quat", "goal"]
    rng = np.random.default_rng(0)
    window = HistoryWindow(1, HISTORY, SCHEMA, "cpu")
    worst, steps, previous = 0.0, 9, None
    for t in range(steps):
        quat = rng.standard_normal(4)
        terms = {
            "joint_pos": rng.normal(0, 0.5, 2),
            "cube_quat": quat / np.linalg.norm(quat),
            "goal": rng.normal(0, 1, 2),
        }
        state = torch.tensor(np.concatenate((terms["joint_pos"], terms["cube_quat"])), dtype=torch.float32)[None]
        goal = torch.tensor(terms["goal"], dtype=torch.float32)[None]
        if t in (0, 5):  # an episode starts: the window is refilled with its first step, previous actions 0
            policy.reset()
            window.reset(torch.tensor([0]), state, goal)
        else:
            window.push(state, goal, previous)
        targets = policy.step(terms)
        with torch.no_grad():
            previous = model.act(window.states, window.instruction, window.prev_actions)
        worst = max(worst, float(np.abs(policy.last_action - previous[0].numpy()).max()))
        np.testing.assert_allclose(targets, policy.last_action + np.array([0.1, -0.2]), atol=1e-6)
    assert worst < 1e-5
    with pytest.raises(BadObservation, match="missing \\['goal'\\]"):
        policy.step({"joint_pos": np.zeros(2), "cube_quat": np.array([0, 0, 0, 1.0])})


def test_joint_wam_ppo_actor_through_the_runtime(tmp_path):
    """A WamPPO run's actor (rsl-rl adapter over a GRU joint WAM) exported by rsl-rl's ``as_onnx`` path: the runtime
    carries its GRU memory and resets it with the episode, as the actor does in rollouts."""
    from tensordict import TensorDict

    from wam_isaac.export.onnx_policy import export_policy_onnx
    from wam_isaac.models.rl_adapters import WamActor

    torch.manual_seed(1)
    cfg = model_cfg("joint", head_hidden=16)
    cfg.trunk.hidden = 16
    actor = WamActor(build_model(SCHEMA, cfg)).eval()
    (tmp_path / "ppo").mkdir()
    entry = export_policy_onnx(actor, tmp_path / "ppo" / "policy.onnx")
    assert entry["recurrent"] == {
        "type": "gru", "num_layers": 1, "hidden_size": 16, "state_inputs": ["h_in"], "state_outputs": ["h_out"],
    }  # fmt: skip
    assert entry["normalizer_in_graph"]
    # every size a robot reads is declared: only the batch is symbolic (torch left the action size as a generated
    # symbol, Expandactions_dim_1)
    assert [(o["name"], o["shape"]) for o in entry["outputs"]] == [
        ("actions", ["batch", 2]),
        ("h_out", [1, "batch", 16]),
    ]
    observation = wam_observation_layout(stand_in_env(), SCHEMA, 1, JOINTS)
    assert observation["history_order"] == "term" and {t["history_length"] for t in observation["terms"]} == {0}
    metadata = {
        "schema": "wam_isaac.export", "schema_version": 1, "task": "synthetic", "policy": entry,
        "observation": observation, "action": {
            "dim": 2, "pipeline": "runtime", "clip_actions": None, "joint_names": JOINTS,
            "terms": [{"name": "arm", "kind": "joint_position", "slice": [0, 2], "joint_names": JOINTS,
                       "scale": [1.0, 1.0], "offset": [0.0, 0.0], "clip": None}],
            "limits": {"lower": [-10.0, -10.0], "upper": [10.0, 10.0]},
        }, "control": {}, "robot": {}, "world_model": None,
    }  # fmt: skip
    write_metadata(tmp_path / "ppo", metadata)
    policy = Policy.load(tmp_path / "ppo")
    rng = np.random.default_rng(2)
    actor.reset()
    previous, worst = torch.zeros(1, 2), 0.0
    for t in range(8):
        if t == 5:  # episode end: both forget their memory and the previous action
            policy.reset()
            actor.reset(torch.ones(1))
            previous = torch.zeros(1, 2)
        quat = rng.standard_normal(4)
        terms = {
            "joint_pos": rng.normal(0, 0.5, 2),
            "cube_quat": quat / np.linalg.norm(quat),
            "goal": rng.normal(0, 1, 2),
        }
        policy.step(terms)
        obs = TensorDict(
            {
                "world_model": {
                    k: torch.tensor(terms[k], dtype=torch.float32)[None] for k in ("joint_pos", "cube_quat")
                },
                "instruction": {"goal": torch.tensor(terms["goal"], dtype=torch.float32)[None]},
                "previous_action": previous,
            },
            batch_size=[1],
        )
        with torch.no_grad():
            previous = actor(obs)
        worst = max(worst, float(np.abs(policy.last_action - previous[0].numpy()).max()))
    assert worst < 1e-5
