"""``wam export`` end to end on WAM-Cartpole: a real checkpoint from ``wam train`` (2 PPO iterations, 16 envs), the
export with its parity checks, the metadata as written, and the exported policy driven through the deploy runtime in
the simulator reproducing the torch policy's actions across episode ends."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from export_helpers import deterministic_actuation, drive_side_by_side, torch_policy

from wam_isaac.cli import main
from wam_isaac.export import export_checkpoint
from wam_isaac.export.onnx_policy import read_metadata_props

pytestmark = pytest.mark.integration

TASK = "WAM-Cartpole"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    root = tmp_path_factory.mktemp("export")
    cwd = os.getcwd()
    os.chdir(root)  # wam train logs under ./logs
    try:
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "--task", TASK, "--num_envs", "16", "--max_iterations", "2", "--seed", "1"])
        assert exit_info.value.code == 0
    finally:
        os.chdir(cwd)
    (checkpoint,) = root.glob("logs/rsl_rl/wam_cartpole/*/model_1.pt")
    result = export_checkpoint(checkpoint, root / "exported", num_envs=8)
    return checkpoint, result


def test_export_validates_and_describes_the_policy(exported):
    checkpoint, result = exported
    assert result.parity_random <= 1e-5 and result.parity_recorded <= 1e-5
    metadata = json.loads((result.out / "metadata.json").read_text())
    assert metadata == result.metadata
    embedded = json.loads(read_metadata_props(result.out / "policy.onnx")["wam_isaac.metadata"])
    assert embedded == {key: value for key, value in metadata.items() if key != "files"}
    assert sorted(p.name for p in result.out.iterdir()) == ["metadata.json", "policy.onnx"]
    assert not list(result.out.parent.glob(".exported*"))
    assert metadata["task"] == TASK and metadata["source"]["iteration"] == 1
    assert metadata["validation"]["recorded"]["count"] == 1000
    policy = metadata["policy"]
    assert policy["ir_version"] <= 9 and policy["inputs"][0]["shape"] == ["batch", 4]
    terms = metadata["observation"]["terms"]
    assert [(t["name"], t["slice"], t["joint_names"]) for t in terms] == [
        ("joint_pos", [0, 2], ["slider_to_cart", "cart_to_pole"]),
        ("joint_vel", [2, 4], ["slider_to_cart", "cart_to_pole"]),
    ]
    assert terms[1]["noise"]["n_max"] == 0.05  # the noise trained with
    (action,) = metadata["action"]["terms"]
    assert action["kind"] == "joint_effort" and action["joint_names"] == ["slider_to_cart"]
    assert action["scale"] == [100.0] and action["offset"] == [0.0]
    assert action["randomization"] == {"latency_steps": [0, 1], "strength_scale": [0.8, 1.2]}
    assert metadata["action"]["limits"] == {"lower": [-400.0], "upper": [400.0]}
    assert metadata["control"]["control_period"] == pytest.approx(1 / 60) and metadata["control"]["decimation"] == 2
    # the rail damping is randomized (x0.5..1.5): the nominal value the actuator had before is exported
    assert metadata["robot"]["pd_gains"]["slider_to_cart"] == {"stiffness": 0.0, "damping": 10.0}
    events = {event["name"]: event for event in metadata["domain_randomization"]["events"]}
    assert events["rail_damping"]["params"]["damping_distribution_params"] == [0.5, 1.5]


def test_exported_policy_through_the_runtime_reproduces_the_torch_policy_in_the_simulator(exported, make_env):
    checkpoint, result = exported
    with make_env(TASK, num_envs=4, configure=deterministic_actuation) as env:
        policy = torch_policy(env, TASK, checkpoint)
        env.reset()
        worst, ends = drive_side_by_side(env, result.out, policy, steps=80)
    assert ends > 0, "the rollout must cross episode ends"
    assert worst < 1e-3  # [N]: float32 actions times a scale of 100


def test_overwrite_replaces_only_after_a_successful_export(exported, tmp_path):
    checkpoint, result = exported
    out = tmp_path / "again"
    out.mkdir()
    (out / "stale.txt").write_text("old")
    second = export_checkpoint(checkpoint, out, overwrite=True, num_envs=4, samples=200)
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "policy.onnx"]
    assert second.metadata["observation"] == result.metadata["observation"]
    assert np.isclose(second.metadata["robot"]["pd_gains"]["slider_to_cart"]["damping"], 10.0)


def test_a_failed_validation_leaves_the_previous_export_untouched(exported, tmp_path, monkeypatch, capsys):
    """Through ``wam export``: the refusal found with the simulator up is one line (no traceback from Isaac Lab's
    ``launch_simulation``), exit 2, and the previous export is kept."""
    from wam_isaac.export import validate

    checkpoint, _ = exported
    out = tmp_path / "kept"
    out.mkdir()
    (out / "policy.onnx").write_bytes(b"the previous export")
    monkeypatch.setattr(validate, "TOLERANCE", 0.0)  # no float32 graph meets it: the parity check must fail
    capsys.readouterr()
    args = ["export", "--checkpoint", str(checkpoint), "--out", str(out), "--overwrite", "--num_envs", "4"]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, "--samples", "100", "--calibration_steps", "10"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2, err
    assert "Traceback" not in err, err
    assert err.splitlines()[-1].startswith("wam export: error: onnxruntime differs from torch"), err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept"]
    assert (out / "policy.onnx").read_bytes() == b"the previous export"


def test_generate_with_a_checkpoint_policy_acts_with_its_mean_action(exported, make_env, tmp_path):
    """``wam generate --policy <checkpoint>``: every stored action is the checkpoint's mean action on the stored
    (noisy) policy observation, at every step of every episode."""
    import torch

    from wam_isaac.data import iter_episodes

    checkpoint, _ = exported
    out = tmp_path / "data"
    with pytest.raises(SystemExit) as exit_info:
        main(
            ["generate", "--task", TASK, "--num_envs", "4", "--steps", "40", "--policy", str(checkpoint)]
            + ["--out", str(out)]
        )
    assert exit_info.value.code == 0
    episodes = [episode for _, episode in iter_episodes(out)]
    assert sum(episode.num_samples for episode in episodes) == 4 * 40
    with make_env(TASK, num_envs=1) as env:
        policy = torch_policy(env, TASK, checkpoint)
        for episode in episodes:
            obs = torch.as_tensor(np.asarray(episode.data["obs/policy"]))
            with torch.inference_mode():
                expected = torch.cat([policy({"policy": row[None]}) for row in obs]).numpy()
            np.testing.assert_allclose(episode.data["actions"], expected, atol=1e-5)


def test_a_checkpoint_of_another_task_is_refused_by_name(exported):
    from wam_isaac.rollout.policies import CheckpointPolicy, PolicyError

    checkpoint, _ = exported
    with pytest.raises(PolicyError, match="trained on WAM-Cartpole, not on --task WAM-Push-Cube"):
        CheckpointPolicy(None, "WAM-Push-Cube", checkpoint)
