"""skrl, Isaac Lab's other first-class RL library: ``isaaclab train --rl_library skrl`` trains WAM-Cartpole on the
CPU from the task's ``skrl_cfg_entry_point`` (``agents/skrl_ppo_cfg.yaml``) and writes its run where Isaac Lab puts
it (``logs/skrl/<directory>/<timestamp>_ppo_torch/``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

pytestmark = pytest.mark.integration

NUM_ENVS, ITERATIONS, ROLLOUTS = 8, 2, 16
"""The run's envs, PPO updates and steps per env per update (``agent.rollouts`` of the Cartpole YAML)."""
POLICY_OBS, CRITIC_OBS, ACTIONS = 4, 9, 1
"""WAM-Cartpole's ``policy`` group (joint pos/vel), ``critic`` group (exact joint state + 5 DR parameters), action."""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cwd = tmp_path_factory.mktemp("skrl")
    isaaclab = Path(sys.executable).with_name("isaaclab")
    command = [str(isaaclab), "train", "--rl_library", "skrl", "--task", "WAM-Cartpole"]
    command += ["--num_envs", str(NUM_ENVS), "--max_iterations", str(ITERATIONS), "--device", "cpu"]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    runs = list((cwd / "logs" / "skrl" / "wam_cartpole").glob("*_ppo_torch"))
    assert len(runs) == 1, f"expected one run under logs/skrl/wam_cartpole, found {runs}"
    return runs[0]


def test_run_is_recorded_as_isaac_lab_records_it(run_dir):
    manifest = json.loads((run_dir / "run.json").read_text())
    assert (manifest["library"], manifest["task"], manifest["metadata"]["agent"]) == (
        "skrl",
        "WAM-Cartpole",
        "skrl_cfg_entry_point",
    )
    agent = yaml.safe_load((run_dir / "params" / "agent.yaml").read_text())
    assert agent["trainer"]["timesteps"] == ITERATIONS * ROLLOUTS, "--max_iterations counts PPO updates"
    assert agent["models"]["value"]["network"][0]["input"] == "STATES", "the critic reads the privileged group"


def test_checkpoint_holds_a_policy_of_the_tasks_sizes_trained_for_two_updates(run_dir):
    from gymnasium.spaces import Box
    from skrl.utils.model_instantiators.torch import gaussian_model

    checkpoint = torch.load(run_dir / "checkpoints" / f"agent_{ITERATIONS * ROLLOUTS}.pt", weights_only=True)
    policy, value = checkpoint["policy"], checkpoint["value"]
    assert policy["net_container.0.weight"].shape == (32, POLICY_OBS)
    assert policy["net_container.4.weight"].shape == (ACTIONS, 32)
    assert value["net_container.0.weight"].shape == (32, CRITIC_OBS), "value on the critic group, not the policy's"
    # the critic's normalizer saw every sample of the first epoch of each update once (its count starts at 1)
    samples = ITERATIONS * NUM_ENVS * ROLLOUTS
    assert float(checkpoint["state_preprocessor"]["current_count"]) == 1 + samples

    # the policy rebuilds from the run's own YAML and loads the checkpoint's parameters exactly
    cfg = yaml.safe_load((run_dir / "params" / "agent.yaml").read_text())["models"]["policy"]
    cfg = {key: value for key, value in cfg.items() if key != "class"}
    model = gaussian_model(
        observation_space=Box(-1.0, 1.0, (POLICY_OBS,)),
        action_space=Box(-1.0, 1.0, (ACTIONS,)),
        device="cpu",
        **cfg,
    )
    model.load_state_dict(policy)
    observations = torch.randn(5, POLICY_OBS)
    _, outputs = model.act({"observations": observations}, role="policy")
    hidden = torch.nn.functional.elu(observations @ policy["net_container.0.weight"].T + policy["net_container.0.bias"])
    hidden = torch.nn.functional.elu(hidden @ policy["net_container.2.weight"].T + policy["net_container.2.bias"])
    mean = hidden @ policy["net_container.4.weight"].T + policy["net_container.4.bias"]
    torch.testing.assert_close(outputs["mean_actions"], mean)


def test_training_scalars_are_logged_to_tensorboard(run_dir):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    events.Reload()
    tags = events.Tags()["scalars"]
    assert "Reward / Total reward (mean)" in tags, tags
    assert any(tag.startswith("Loss / Policy loss") for tag in tags), tags
