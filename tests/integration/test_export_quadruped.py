"""Export on WAM-Quadruped-Flat: parity, the runtime beside the torch policy in the simulator across episode ends,
and the PD gains as the actuators apply them (not 1.0 / -0.0, mjlab #347)."""

from __future__ import annotations

import numpy as np
import pytest
from export_helpers import deterministic_actuation, export_in, run_side_by_side

pytestmark = pytest.mark.integration


def test_quadruped(make_env, tmp_path):
    with make_env("WAM-Quadruped-Flat", num_envs=4, configure=deterministic_actuation) as env:
        result, policy = export_in(env, "WAM-Quadruped-Flat", tmp_path)
        robot = env.scene["robot"]
        (gain_event,) = [
            cfg.func
            for cfg in env.event_manager._mode_term_cfgs["startup"]
            if cfg.func.__class__.__name__ == "randomize_actuator_gains"
        ]
        nominal_kp = gain_event.default_actuator_stiffness["legs"][0].tolist()
        nominal_kd = gain_event.default_actuator_damping["legs"][0].tolist()
        live_kp = robot.actuators["legs"].stiffness.cpu().numpy()
        worst, ends = run_side_by_side(env, result, policy)
    metadata = result.metadata
    assert result.parity_random <= 1e-5 and result.parity_recorded <= 1e-5
    gains = metadata["robot"]["pd_gains"]
    names = metadata["robot"]["joint_names"]
    assert len(names) == 12 and metadata["action"]["joint_names"] == names
    assert [gains[name]["stiffness"] for name in names] == pytest.approx(nominal_kp)
    assert [gains[name]["damping"] for name in names] == pytest.approx(nominal_kd)
    assert all(gains[name] == {"stiffness": 25.0, "damping": 0.5} for name in names)  # the actuator cfg's values
    assert metadata["robot"]["pd_gains_source"] == "actuators_before_randomization"
    # the live gains were randomized per env (x0.8..1.2) around the exported nominal values
    assert np.all((live_kp >= 0.8 * 25.0 - 1e-4) & (live_kp <= 1.2 * 25.0 + 1e-4)) and live_kp.std() > 0.1
    (action,) = metadata["action"]["terms"]
    assert action["scale"] == [0.25] * 12
    assert ends >= 4 and worst < 1e-5
