"""WamSchema: read from a manifest, and a dataset/model mismatch names the differing key."""

from __future__ import annotations

import pytest

from wam_isaac.models import SchemaError, WamSchema


def manifest(**shapes) -> dict:
    """A manifest holding the given keys (``__`` in an argument name stands for ``/``)."""
    keys = {name.replace("__", "/"): {"shape": shape} for name, shape in shapes.items()}
    return {"task_id": "WAM-Test", "keys": keys}


BASE = {
    "obs__world_model__cube_pos": [3],
    "obs__world_model__cube_quat": [4],
    "obs__instruction__goal": [2],
    "actions": [2],
    "rewards": [],
    "labels__flags__terminated": [],
    "labels__contact__fingers__flag": [2],
    "obs__policy": [19],
}


def test_from_manifest_reads_state_instruction_actions_and_labels():
    schema = WamSchema.from_manifest(manifest(**BASE))
    assert schema.state_keys == {"obs/world_model/cube_pos": [3], "obs/world_model/cube_quat": [4]}
    assert schema.instruction_keys == {"obs/instruction/goal": [2]}
    assert schema.contact_keys == {"labels/contact/fingers/flag": [2]}
    assert (schema.state_dim, schema.instruction_dim, schema.action_dim, schema.contact_dim) == (7, 2, 2, 2)
    assert [(s.name, s.start, s.stop) for s in schema.state_slices()] == [("cube_pos", 0, 3), ("cube_quat", 3, 7)]
    assert [s.name for s in schema.quaternion_slices()] == ["cube_quat"]
    assert schema.has_termination
    assert WamSchema.from_dict(schema.to_dict()) == schema


def test_missing_key_is_named():
    model = WamSchema.from_manifest(manifest(**BASE))
    data = WamSchema.from_manifest(manifest(**{k: v for k, v in BASE.items() if k != "obs__world_model__cube_quat"}))
    with pytest.raises(SchemaError, match="dataset has no key 'obs/world_model/cube_quat'.*shape \\[4\\]"):
        model.check_compatible(data)


def test_different_shape_is_named():
    model = WamSchema.from_manifest(manifest(**BASE))
    data = WamSchema.from_manifest(manifest(**{**BASE, "actions": [3]}))
    with pytest.raises(SchemaError, match="key 'actions' has shape \\[3\\] in the dataset, the model expects \\[2\\]"):
        model.check_compatible(data)


def test_extra_key_is_named_and_equal_schemas_pass():
    model = WamSchema.from_manifest(manifest(**BASE))
    data = WamSchema.from_manifest(manifest(**BASE, obs__world_model__cube_vel=[3]))
    with pytest.raises(SchemaError, match="dataset has key 'obs/world_model/cube_vel' that the model was not"):
        model.check_compatible(data)
    model.check_compatible(WamSchema.from_manifest(manifest(**BASE)))  # no error


def test_dataset_without_world_model_keys_says_what_to_do():
    keys = {k: v for k, v in BASE.items() if not k.startswith("obs__world_model")}
    with pytest.raises(SchemaError, match="WAM-Test has no 'obs/world_model/\\*' keys.*world_model observation group"):
        WamSchema.from_manifest(manifest(**keys))
