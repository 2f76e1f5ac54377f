"""The transfer conditions on the tasks' real configs (no simulator): wider randomization ranges worked out by hand,
the solver substeps changed, the observation delay and noise of the runtime's input."""

from __future__ import annotations

import math

import numpy as np
import pytest

from wam_isaac.export.transfer import DELAY_STEPS, TermNoise, change_solver, widen_randomization, widen_range


def push_cube_cfg():
    from wam_isaac_tasks.push_cube.push_cube_env_cfg import PushCubeEnvCfg

    return PushCubeEnvCfg()


def test_widen_range_geometric_for_positive_and_linear_otherwise():
    # [0.5, 2] = 1 x/ 2 -> 1 x/ 4
    assert widen_range(0.5, 2.0) == pytest.approx((0.25, 4.0))
    # [0.3, 0.6]: center sqrt(0.18), half-width log(2)/2 -> doubled
    center = math.sqrt(0.18)
    assert widen_range(0.3, 0.6) == pytest.approx((center / 2.0, center * 2.0))
    assert widen_range(-0.15, 0.15) == pytest.approx((-0.3, 0.3))
    assert widen_range(0.0, 0.0) == (0.0, 0.0)


def test_wider_dr_on_push_cube():
    cfg = push_cube_cfg()
    changed = widen_randomization(cfg)
    events = cfg.events
    assert events.cube_mass.params["mass_distribution_params"] == pytest.approx((0.25, 4.0))
    # [0.8, 1.2]: center c = sqrt(0.96); doubling the log half-width gives [0.8^2 / c, 1.2^2 / c]
    assert events.servo_gains.params["stiffness_distribution_params"] == pytest.approx(
        (0.8**2 / math.sqrt(0.96), 1.2**2 / math.sqrt(0.96))
    )
    assert events.reset_arm.params["position_range"] == pytest.approx((-0.3, 0.3))
    assert events.reset_arm.params["velocity_range"] == (0.0, 0.0)
    assert events.reset_cube.params["pose_range"]["y"] == pytest.approx((-0.2, 0.2))
    assert events.cube_friction.params["num_buckets"] == 64  # not a range
    assert cfg.actions.arm.strength_scale == pytest.approx(widen_range(0.8, 1.2))
    assert changed["events.cube_mass"]["mass_distribution_params"]["trained"] == [0.5, 2.0]
    assert changed["actions.arm.strength_scale"]["evaluated"] == pytest.approx(list(widen_range(0.8, 1.2)))


def test_solver_substeps_changed():
    cfg = push_cube_cfg()
    assert change_solver(cfg) == {"sim.physics.num_substeps": {"trained": 4, "evaluated": 2}}
    assert cfg.sim.physics.newton_mjwarp.num_substeps == 2 and cfg.sim.physics.default.num_substeps == 2


def test_runtime_input_delayed_and_noised_by_the_training_amplitude():
    metadata = {"observation": {"terms": [
        {"name": "joint_pos", "noise": {"n_min": -0.01, "n_max": 0.01}},
        {"name": "cube_pos", "noise": None},
    ]}}  # fmt: skip
    noise = TermNoise(metadata, num_envs=1, delay=DELAY_STEPS, noise_factor=2.0, seed=0)
    seen = []
    for t in range(6):
        fresh = t in (0, 4)  # an episode starts: the delay line restarts from the current measurement
        seen.append(noise(0, {"joint_pos": np.full(3, float(t)), "cube_pos": np.full(2, float(t))}, fresh))
    cube = [float(s["cube_pos"][0]) for s in seen]
    assert cube == [0.0, 0.0, 0.0, 1.0, 4.0, 4.0]  # two steps late, restarted at t = 4
    joint = np.array([s["joint_pos"] for s in seen]) - np.array(cube)[:, None]
    assert np.abs(joint).max() <= 0.02 and np.abs(joint).max() > 0.01  # uniform noise of 2 x 0.01


def test_alarmed_episodes_split_by_outcome():
    from wam_isaac.cli.transfer_eval import table
    from wam_isaac.export.transfer import ConditionResult

    result = ConditionResult("training", {})
    # 5 successes (1 alarmed), 3 failures (2 alarmed)
    result.success = [True, True, False, True, False, True, True, False]
    result.alarmed = [False, True, True, False, False, False, False, True]
    result.returns, result.lengths = [1.0] * 8, [30] * 8
    result.judged, result.alarms = 200, 9
    figures = result.to_dict()
    assert figures["episodes_alarmed"] == pytest.approx(3 / 8)
    assert figures["successes_alarmed"] == pytest.approx(1 / 5)
    assert figures["failures_alarmed"] == pytest.approx(2 / 3)
    assert figures["alarm_rate"] == pytest.approx(9 / 200)
    row = table({"training": figures}, monitored=True).splitlines()[1].split()
    assert row[-4:-1] == ["37.5%", "20.0%", "66.7%"]
    # every episode succeeded: no failure to flag; no monitor: nothing judged
    result.success = [True] * 8
    figures = result.to_dict()
    assert figures["failures_alarmed"] is None and figures["successes_alarmed"] == pytest.approx(3 / 8)
    result.judged = 0
    figures = result.to_dict()
    assert figures["successes_alarmed"] is None and figures["failures_alarmed"] is None
    assert figures["episodes_alarmed"] is None
    # judged steps but no episode ended yet: no share at all
    empty = ConditionResult("training", {}, judged=50)
    figures = empty.to_dict()
    assert figures["episodes_alarmed"] is None and figures["successes_alarmed"] is None
    assert figures["failures_alarmed"] is None and figures["alarm_rate"] == 0.0
