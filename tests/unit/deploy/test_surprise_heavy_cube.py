"""The monitor's calibration and statistics on recorded WAM-Push-Cube data: a cube 100x heavier than trained is
caught by the stall statistic in most episodes; a 10x heavier one is not reliably caught.

The data (``data/push_cube_heavy_joint_pos.npz``) are the arm's measured joint-position changes and the one-step
predictions (mean, std) of a GRU world model (history 8) under a plain PPO policy (iteration 100), 300 control
steps of 32 envs with the training randomization: 16 envs with the trained cube masses (x U(0.5, 2)), 8 with the
cube 10x, 8 with it 100x its default mass. ``scripts/record_monitor_fixture.py`` recorded them; its docstring gives
the exact command (``--steps 300 --seed 0 --nominal 16 --per_factor 8 --factors 2,4,10,30,100 --keep 1,10,100``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from wam_isaac.deploy.statistics import stall_llr
from wam_isaac.export.monitor_calibration import WorldRecording, calibrate_monitor, judged_steps, stall_cusums

DATA = Path(__file__).parent / "data" / "push_cube_heavy_joint_pos.npz"
TERMS = [{"name": "joint_pos", "state_slice": [0, 3], "delta_slice": [0, 3], "rotation": False}]


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    return dict(np.load(DATA))


def recording(data, envs) -> WorldRecording:
    """The recorded changes as a recording whose states start at 0 (the statistics read changes only)."""
    steps, n = data["dones"].shape[0], len(envs)
    empty = np.zeros((steps, n, 1, 0), np.float32)
    return WorldRecording(
        states=np.zeros((steps, n, 1, 3), np.float32),
        instruction=empty,
        prev_actions=empty,
        actions=np.zeros((steps, n, 0), np.float32),
        next_states=data["delta"][:, envs],
        dones=data["dones"][:, envs],
    )


def alarmed_episodes(data, envs, calibration) -> float:
    """Share of the episodes (10 judged steps or more) of ``envs`` in which the stall alarm fired."""
    rec = recording(data, envs)
    mean, std = data["mean"][:, envs], data["std"][:, envs]
    stall = calibration["stall"]
    llr = stall_llr(rec.next_states, mean, std, TERMS, stall["rho"]) - stall["drift"]
    statistic = stall_cusums(rec, llr)[..., 0] / stall["term_scales"]["joint_pos"]
    _, starts = judged_steps(rec)
    hits = []
    for n in range(len(envs)):
        episode = np.cumsum(starts[:, n])
        for e in np.unique(episode):
            values = statistic[(episode == e) & ~np.isnan(statistic[:, n]), n]
            if values.size >= 10:
                hits.append(bool((values > stall["threshold"]).any()))
    return float(np.mean(hits))


def test_a_cube_100x_heavier_is_caught_by_the_stall_statistic(data):
    factor = data["factor"]
    nominal = np.flatnonzero(factor == 1.0)
    rec = recording(data, nominal)
    calibration = calibrate_monitor(rec, data["mean"][:, nominal], data["std"][:, nominal], TERMS)
    assert calibration["false_alarm_rate_held_out"] <= 0.01  # 8 held-out envs with the trained masses
    assert calibration["stall"]["false_alarm_rate_held_out"] <= 0.01
    heavy, ten = np.flatnonzero(factor == 100.0), np.flatnonzero(factor == 10.0)
    # the arm pushes a cube it can hardly move and lags its targets: most episodes alarm, by the stall statistic
    assert alarmed_episodes(data, heavy, calibration) >= 0.7
    # and the held-out envs with the trained masses almost never: the alarm is about the cube, not the episode
    assert alarmed_episodes(data, nominal[len(nominal) // 2 :], calibration) <= 0.1
    # a 10x cube moves ~15 % slower while pushed under this contact model: no more alarms than a few episodes
    assert alarmed_episodes(data, ten, calibration) <= 0.3
