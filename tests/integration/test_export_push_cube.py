"""Export on WAM-Push-Cube (a last-action input, clipped joint velocities, joint-position targets): parity, and the
runtime beside the torch policy in the simulator across episode ends."""

from __future__ import annotations

import pytest
from export_helpers import deterministic_actuation, export_in, run_side_by_side

pytestmark = pytest.mark.integration


def test_push_cube(make_env, tmp_path):
    with make_env("WAM-Push-Cube", num_envs=4, configure=deterministic_actuation) as env:
        result, policy = export_in(env, "WAM-Push-Cube", tmp_path)
        worst, ends = run_side_by_side(env, result, policy)
    metadata = result.metadata
    assert result.parity_random <= 1e-5 and result.parity_recorded <= 1e-5
    terms = {term["name"]: term for term in metadata["observation"]["terms"]}
    assert terms["actions"]["source"] == "last_action" and terms["joint_vel"]["clip"] == [-20.0, 20.0]
    (action,) = metadata["action"]["terms"]
    assert action["kind"] == "joint_position" and action["offset"] == [
        metadata["robot"]["default_joint_pos"][name] for name in action["joint_names"]
    ]
    assert ends >= 4 and worst < 1e-5
