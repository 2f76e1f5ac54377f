"""scripts/trace_transfer_alarms.py's breakdown of a monitor log, on a log built by hand (no simulator)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "trace_transfer_alarms.py"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("trace_transfer_alarms", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_alarms_broken_down_by_episode_step_and_term(script):
    steps, envs = 12, 2
    fresh = np.zeros((steps, envs), bool)
    fresh[[0, 4, 8], 0] = True  # env 0: episodes of 4 and 4 steps, then one still running
    fresh[[0, 10], 1] = True  # env 1: one episode of 10 steps, then one still running
    statistic = np.full((steps, envs), 1.0)
    statistic[fresh] = np.nan  # a new episode's first step is not judged
    alarm = np.zeros((steps, envs), bool)
    alarm[[7, 8], 1] = True
    statistic[[7, 8], 1] = 9.0
    jump = alarm.copy()
    term = np.where(np.isnan(statistic), -1, 0)
    term[7, 1], term[8, 1] = 2, 1
    log = {"alarm": alarm, "jump": jump, "statistic": statistic, "term": term, "fresh": fresh}
    out = script.breakdown(log, ["joint_pos", "joint_vel", "cube_pos"])
    assert json.loads(json.dumps(out)) == out  # the script prints it as JSON
    judged = 24 - 5  # 5 first steps of episodes
    assert out["judged_steps"] == judged and out["alarm_rate"] == pytest.approx(2 / judged)
    assert out["episodes_ended"] == 3 and out["alarmed_episodes"] == [{"length": 10, "first_alarm_step": 7}]
    assert out["longest_unalarmed_episode"] == 4 and out["median_episode_length"] == 4.0
    assert out["jump_alarms_by_term"] == {"joint_pos": 0, "joint_vel": 1, "cube_pos": 1}
    # episode steps 0-9: env 0 steps 1-3 (x2), 1-3 of its running episode, env 1 steps 1-9; 10-11: none judged
    early = out["by_episode_step"]["0-9"]
    assert early["judged"] == judged and early["alarm_rate"] == pytest.approx(2 / judged)
    assert early["mean_statistic"] == pytest.approx((judged - 2 + 18) / judged)
