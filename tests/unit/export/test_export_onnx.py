"""policy.onnx through rsl-rl's as_onnx: metadata round trip, IR/opset, dynamic batch, and the parity checks (which
must also catch a graph that differs from the policy)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from deploy_synthetic import OBS_DIM, make_actor, write_synthetic_export
from tensordict import TensorDict

from wam_isaac.deploy.schema import sha256_file
from wam_isaac.export import ExportError, validate
from wam_isaac.export.onnx_policy import MAX_IR_VERSION, OPSET, read_metadata_props

GROUPS = [("policy", OBS_DIM)]


def test_metadata_round_trip(tmp_path):
    metadata = write_synthetic_export(tmp_path, make_actor())
    on_disk = json.loads((tmp_path / "metadata.json").read_text())
    assert on_disk == metadata
    props = read_metadata_props(tmp_path / "policy.onnx")
    assert props["wam_isaac.schema_version"] == "1"
    embedded = json.loads(props["wam_isaac.metadata"])
    assert embedded == {key: value for key, value in on_disk.items() if key != "files"}
    assert on_disk["files"]["policy.onnx"]["sha256"] == sha256_file(tmp_path / "policy.onnx")
    assert on_disk["files"]["policy.onnx"]["bytes"] == (tmp_path / "policy.onnx").stat().st_size
    # floats survive at full precision (not "%.3f"): the offsets are not round to 3 decimals by chance
    offsets = embedded["action"]["terms"][0]["offset"]
    assert offsets == [0.1, -0.2, 0.3]
    proto = onnx.load(str(tmp_path / "policy.onnx"))
    assert proto.ir_version <= MAX_IR_VERSION == 9
    assert {entry.domain: entry.version for entry in proto.opset_import}[""] == OPSET == metadata["policy"]["opset"]
    assert metadata["policy"]["inputs"] == [{"name": "obs", "shape": ["batch", OBS_DIM], "dtype": "float32"}]
    assert metadata["policy"]["outputs"] == [{"name": "actions", "shape": ["batch", 3], "dtype": "float32"}]


@pytest.mark.parametrize("recurrent", [None, "gru", "lstm"])
def test_parity_random_across_batch_sizes(tmp_path, recurrent):
    actor = make_actor(recurrent, seed=1)
    metadata = write_synthetic_export(tmp_path, actor)
    validate.check_model(tmp_path / "policy.onnx")
    assert validate.parity_random(actor, GROUPS, tmp_path / "policy.onnx", metadata["policy"], count=1000) < 1e-5
    assert validate.parity_random(actor, GROUPS, tmp_path / "policy.onnx", metadata["policy"], count=1) < 1e-5
    # the graph holds the normalizer: perturbing its statistics after export makes the check fail
    actor.obs_normalizer._mean.add_(0.5)
    worst = validate.parity_random(actor, GROUPS, tmp_path / "policy.onnx", metadata["policy"], count=100)
    assert worst > 1e-3
    with pytest.raises(ExportError, match="on random observations"):
        validate.require("random", worst)


def test_random_observations_span_the_recorded_ones_per_entry():
    """Entries in millimetres and in radians each get their own spread; a constant entry gets the 1e-3 floor."""
    rng = np.random.default_rng(0)
    observed = np.stack(
        [0.4 + 0.001 * rng.standard_normal(5000), 2.0 * rng.standard_normal(5000), np.full(5000, 7.0)], 1
    )
    drawn = validate.random_observations(observed.reshape(50, 100, 3), 20000, np.random.default_rng(1))
    assert drawn.shape == (20000, 3) and drawn.dtype == np.float32
    assert np.all(np.abs(drawn.mean(0) - [0.4, 0.0, 7.0]) < [1e-4, 0.1, 1e-4])
    np.testing.assert_allclose(drawn.std(0), [0.003, 6.0, 0.003], rtol=0.05)


def test_parity_random_around_recorded_observations(tmp_path):
    actor = make_actor(None, seed=1)
    metadata = write_synthetic_export(tmp_path, actor)
    observed = np.random.default_rng(2).standard_normal((10, 4, OBS_DIM)).astype(np.float32)
    worst = validate.parity_random(actor, GROUPS, tmp_path / "policy.onnx", metadata["policy"], 500, observed=observed)
    assert worst < 1e-5
    actor.obs_normalizer._mean.add_(0.5)  # still a comparison of the graph with the torch policy
    assert (
        validate.parity_random(actor, GROUPS, tmp_path / "policy.onnx", metadata["policy"], 100, observed=observed)
        > 1e-3
    )


@pytest.mark.parametrize("recurrent", [None, "gru"])
def test_parity_recorded_carries_and_resets_the_state(tmp_path, recurrent):
    actor = make_actor(recurrent, seed=2)
    metadata = write_synthetic_export(tmp_path, actor)
    rng = np.random.default_rng(0)
    steps, envs = 12, 4
    observations = rng.normal(size=(steps, envs, OBS_DIM)).astype(np.float32)
    dones = np.zeros((steps, envs), dtype=bool)
    dones[4, 1] = dones[7, [0, 3]] = True
    actions = []
    actor.reset()
    with torch.inference_mode():
        for t in range(steps):
            actions.append(actor(TensorDict({"policy": torch.from_numpy(observations[t])}, batch_size=[envs])).numpy())
            actor.reset(torch.from_numpy(dones[t]))
    recording = validate.Recording(observations, np.stack(actions), dones)
    assert validate.parity_recorded(tmp_path / "policy.onnx", metadata["policy"], recording) < 1e-5
    if recurrent:
        # a recording whose resets were not applied by torch is caught (the state matters)
        wrong = validate.Recording(observations, np.stack(actions), np.zeros_like(dones))
        assert validate.parity_recorded(tmp_path / "policy.onnx", metadata["policy"], wrong) > 1e-4
