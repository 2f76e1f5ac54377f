"""Contact-quality figures on hand-built box states whose answers are worked out in the comments."""

from __future__ import annotations

import math

import pytest
import torch

from wam_isaac.evaluation.contact_quality import contact_quality, tilt_angle

HALF = 0.025
"""Cube half size [m]."""
TABLE_Z = 0.40
"""Support height [m]."""
ALPHA = 0.1
"""Tilt of state 2 about x [rad]."""


def trajectory():
    """One trajectory of 4 states: t=0 at rest and flat on the table; t=1..3 sliding at 0.1 m/s along x.

    - t=1: flat, 1 mm deep, w = (0.3, 0.4, 1.0): tilt rate 0.5;
    - t=2: tilted by ALPHA about x, lowest corner 2 mm deep (center at 0.398 + h (sin a + cos a)), w = (0, 1.2, 0);
    - t=3: flat, 3 mm above the table, w = 0.
    """
    pos = torch.tensor(
        [
            [0.3, 0.0, TABLE_Z + HALF],
            [0.3, 0.0, TABLE_Z + HALF - 0.001],
            [0.3, 0.0, TABLE_Z - 0.002 + HALF * (math.sin(ALPHA) + math.cos(ALPHA))],
            [0.3, 0.0, TABLE_Z + HALF + 0.003],
        ],
        dtype=torch.float64,
    )
    quat = torch.tensor([[0.0, 0.0, 0.0, 1.0]] * 4, dtype=torch.float64)
    quat[2] = torch.tensor([math.sin(ALPHA / 2), 0.0, 0.0, math.cos(ALPHA / 2)])
    lin_vel = torch.tensor([[0.0, 0.0, 0.0]] + [[0.1, 0.0, 0.0]] * 3, dtype=torch.float64)
    ang_vel = torch.tensor([[0.0, 0.0, 0.0], [0.3, 0.4, 1.0], [0.0, 1.2, 0.0], [0.0, 0.0, 0.0]], dtype=torch.float64)
    return pos[None], quat[None], lin_vel[None], ang_vel[None]


def test_sliding_and_resting_figures_equal_the_hand_computed_values():
    quality = contact_quality(*trajectory(), (HALF,) * 3, TABLE_Z)
    sliding, resting = quality.sliding, quality.resting
    assert sliding.states == 3 and resting.states == 1
    # tilt rates [0.5, 1.2, 0]: median 0.5; linear p95 at rank 1.9 of the sorted [0, 0.5, 1.2]: 0.5 + 0.9 x 0.7
    assert sliding.tilt_rate_median == pytest.approx(0.5)
    assert sliding.tilt_rate_p95 == pytest.approx(0.5 + 0.9 * 0.7)
    # tilt angles [0, ALPHA, 0]: median 0, p95 0.9 ALPHA
    assert sliding.tilt_angle_median == pytest.approx(0.0, abs=1e-7)
    assert sliding.tilt_angle_p95 == pytest.approx(0.9 * ALPHA)
    # quaternion x, y of the 3 states pooled: one sin(a/2) among six values: std = sin(a/2) sqrt(5) / 6
    assert sliding.quat_xy_spread == pytest.approx(math.sin(ALPHA / 2) * math.sqrt(5) / 6)
    # steps starting at a sliding state: 1->2 |(-0.3, 0.8, -1.0)|^2 = 1.73, 2->3 |(0, -1.2, 0)|^2 = 1.44
    assert sliding.ang_vel_change_rms == pytest.approx(math.sqrt((1.73 + 1.44) / 2))
    # depths [1, 2, 0] mm
    assert sliding.penetration_median == pytest.approx(0.001, abs=1e-9)
    assert sliding.penetration_max == pytest.approx(0.002, abs=1e-9)
    assert sliding.penetration_p95 == pytest.approx(0.001 + 0.9 * 0.001, abs=1e-9)
    # at rest: flat on the table, and the step 0->1 changes w by |(0.3, 0.4, 1.0)| = sqrt(1.25)
    assert resting.tilt_rate_p95 == 0.0 and resting.penetration_max == pytest.approx(0.0, abs=1e-9)
    assert resting.ang_vel_change_rms == pytest.approx(math.sqrt(1.25))


def test_episode_boundaries_and_invalid_states_are_left_out():
    pos, quat, lin_vel, ang_vel = trajectory()
    # state 2 starts a new episode: the step 1->2 is not a change of one cube's angular velocity
    continues = torch.tensor([[True, False, True]])
    quality = contact_quality(pos, quat, lin_vel, ang_vel, (HALF,) * 3, TABLE_Z, continues=continues)
    assert quality.sliding.ang_vel_change_rms == pytest.approx(1.2)
    # state 2 invalid (e.g. off the table): neither it nor the steps into or out of it count
    valid = torch.tensor([[True, True, False, True]])
    quality = contact_quality(pos, quat, lin_vel, ang_vel, (HALF,) * 3, TABLE_Z, valid=valid)
    assert quality.sliding.states == 2
    assert quality.sliding.penetration_max == pytest.approx(0.001, abs=1e-9)
    assert quality.sliding.ang_vel_change_rms is None


def test_a_cube_never_moving_has_no_sliding_figures():
    pos, quat, _, ang_vel = trajectory()
    quality = contact_quality(pos, quat, torch.zeros_like(pos), ang_vel, (HALF,) * 3, TABLE_Z)
    assert quality.sliding.states == 0
    assert quality.sliding.tilt_rate_p95 is None and quality.sliding.penetration_max is None
    assert quality.to_dict()["resting"]["states"] == 4


def test_tilt_angle_is_zero_on_every_face_and_the_axis_angle_between_faces():
    about_x = lambda angle: torch.tensor([math.sin(angle / 2), 0.0, 0.0, math.cos(angle / 2)])  # noqa: E731
    assert float(tilt_angle(about_x(math.pi / 2))) == pytest.approx(0.0, abs=1e-6)  # lying on a side face
    assert float(tilt_angle(about_x(0.3))) == pytest.approx(0.3)
    assert float(tilt_angle(about_x(math.pi / 4))) == pytest.approx(math.pi / 4)  # balanced on an edge
