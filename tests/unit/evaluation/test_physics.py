"""The physical-commonsense checks against closed-form cube motions."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch
from cube_states import DT, HALF, SCHEMA, SPEC, TABLE_Z, cube_states, free_fall, resting

from wam_isaac.evaluation.physics import (
    BoxTrajectory,
    check_trajectories,
    compare_physics,
    contact_consistency,
    lowest_corner_height,
    mechanical_energy,
)


def test_a_cube_resting_on_the_table_does_not_penetrate():
    checks = check_trajectories(resting(), SCHEMA, SPEC)
    assert checks["penetration"].violations == 0
    assert checks["penetration"].count == 4  # the shared first state is not counted
    assert checks["penetration"].worst == pytest.approx(0.0, abs=1e-12)


def test_a_cube_one_centimeter_into_the_table_is_flagged():
    checks = check_trajectories(resting(height=TABLE_Z + HALF - 0.01), SCHEMA, SPEC)
    assert (checks["penetration"].violations, checks["penetration"].count) == (4, 4)
    assert checks["penetration"].worst == pytest.approx(0.01)


def test_lowest_corner_of_a_cube_tilted_45_degrees_about_x_is_half_a_face_diagonal_below_its_center():
    quat = torch.tensor([math.sin(math.pi / 8), 0.0, 0.0, math.cos(math.pi / 8)], dtype=torch.float64)
    center = torch.tensor([0.0, 0.0, 1.0], dtype=torch.float64)
    assert float(lowest_corner_height(center, quat, (HALF,) * 3)) == pytest.approx(1.0 - HALF * math.sqrt(2.0))
    # resting on its edge is fine; the same cube with its center at the flat-resting height digs in 1.04 cm
    on_edge = cube_states([[0.36, 0.0, TABLE_Z + HALF * math.sqrt(2.0)]] * 3, quat=quat)
    assert check_trajectories(on_edge, SCHEMA, SPEC)["penetration"].violations == 0
    sunk = cube_states([[0.36, 0.0, TABLE_Z + HALF]] * 3, quat=quat)
    assert check_trajectories(sunk, SCHEMA, SPEC)["penetration"].worst == pytest.approx(HALF * (math.sqrt(2) - 1))


def test_a_free_falling_cube_obeys_gravity_and_conserves_energy():
    checks = check_trajectories(free_fall(steps=6), SCHEMA, SPEC)
    assert (checks["gravity"].violations, checks["gravity"].count) == (0, 5)
    assert checks["gravity"].worst == pytest.approx(9.81 * DT)  # v_z drops by exactly g dt each step
    assert (checks["energy_from_nowhere"].violations, checks["energy_from_nowhere"].count) == (0, 5)
    box = BoxTrajectory(free_fall(steps=6), SCHEMA, SPEC)
    torch.testing.assert_close(box.energy, torch.full_like(box.energy, float(box.energy[0, 0])))


def test_a_hovering_cube_violates_gravity():
    hovering = resting(steps=6, height=TABLE_Z + HALF + 0.3)
    checks = check_trajectories(hovering, SCHEMA, SPEC)
    assert (checks["gravity"].violations, checks["gravity"].count) == (5, 5)


def test_a_cube_on_the_table_is_never_airborne():
    assert check_trajectories(resting(), SCHEMA, SPEC)["gravity"].count == 0


def accelerating(tip) -> torch.Tensor:
    """A cube sliding on the table at 0, 0.5, 1.0 m/s: kinetic energy 0, 0.025, 0.1 J."""
    speed = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    x = 0.36 + torch.tensor([0.0, 0.01, 0.03], dtype=torch.float64)
    pos = torch.stack((x, torch.zeros(3, dtype=torch.float64), torch.full((3,), TABLE_Z + HALF)), -1)
    vel = torch.stack((speed, torch.zeros(3), torch.zeros(3)), -1)
    return cube_states(pos, vel, tip=tip)


def test_energy_rising_with_the_tip_far_is_flagged():
    checks = check_trajectories(accelerating(tip=(0.0, 0.0)), SCHEMA, SPEC)
    assert (checks["energy_from_nowhere"].violations, checks["energy_from_nowhere"].count) == (2, 2)
    assert checks["energy_from_nowhere"].worst == pytest.approx(0.5 * 0.2 * (1.0 - 0.25))


def test_energy_rising_with_the_tip_touching_the_cube_is_not_checked():
    touching = (0.36 - HALF - 0.02, 0.0)  # tip sphere against the cube's -x face
    checks = check_trajectories(accelerating(tip=touching), SCHEMA, SPEC)
    assert (checks["energy_from_nowhere"].violations, checks["energy_from_nowhere"].count) == (0, 0)
    assert checks["energy_from_nowhere"].rate is None


def test_mechanical_energy_of_a_spinning_lifted_cube_matches_the_closed_form():
    pos = torch.tensor([0.0, 0.0, TABLE_Z + 0.1])
    energy = mechanical_energy(pos, torch.tensor([0.0, 2.0, 0.0]), torch.tensor([0.0, 0.0, 3.0]), SPEC)
    inertia = 0.2 * (2 * HALF) ** 2 / 6  # uniform cube: m s^2 / 6
    expected = 0.5 * 0.2 * 4.0 + 0.5 * inertia * 9.0 + 0.2 * 9.81 * 0.1
    assert float(energy) == pytest.approx(expected, rel=1e-6)


def test_contact_flags_must_agree_with_the_height():
    box = BoxTrajectory(torch.cat((resting(steps=2), resting(steps=2, height=TABLE_Z + 0.2))), SCHEMA, SPEC)
    flags = torch.tensor([[1.0, 1.0], [1.0, 0.0]])  # right on the table; wrong then right in the air
    check = contact_consistency(box, flags, tolerance=0.005)
    assert (check.violations, check.count) == (1, 4)


def test_without_a_spec_every_check_is_not_applicable():
    report = compare_physics(resting(), resting(), SCHEMA, None, "task 'X' registers no wam_physics_spec_entry_point")
    assert report == {"applicable": False, "reason": "task 'X' registers no wam_physics_spec_entry_point"}


def test_the_report_puts_predicted_and_true_side_by_side_with_the_tolerances():
    sunk = resting(height=TABLE_Z + HALF - 0.01)
    report = compare_physics(sunk, resting(), SCHEMA, SPEC)
    penetration = report["checks"]["penetration"]
    assert (penetration["pred"]["rate"], penetration["true"]["rate"]) == (1.0, 0.0)
    assert report["tolerances"]["penetration_m"] == 0.005
    assert report["resting_height_m"] == pytest.approx(TABLE_Z)
    contact = report["checks"]["contact_consistency"]
    assert contact["applicable"] is False and contact["reason"] == SPEC.contact_note


def test_push_cube_forward_kinematics_inverts_the_experts_inverse_kinematics():
    from wam_isaac_tasks.push_cube.expert import scara_ik
    from wam_isaac_tasks.push_cube.physics_spec import PUSH_CUBE_PHYSICS, tip_xy

    targets = torch.tensor([[0.30, 0.0], [0.45, 0.12], [0.52, -0.15], [0.25, 0.05]])
    torch.testing.assert_close(tip_xy(scara_ik(targets)), targets, atol=1e-5, rtol=0)
    assert PUSH_CUBE_PHYSICS.dt == pytest.approx(0.04)
    assert dataclasses.asdict(PUSH_CUBE_PHYSICS)["support_height"] == pytest.approx(0.40)


def test_push_cube_registers_its_spec():
    from wam_isaac.evaluation.spec import physics_spec_for
    from wam_isaac_tasks.push_cube.physics_spec import PUSH_CUBE_PHYSICS

    assert physics_spec_for("WAM-Push-Cube") == (PUSH_CUBE_PHYSICS, "")
    spec, reason = physics_spec_for("WAM-Cartpole")
    assert spec is None and reason == "task 'WAM-Cartpole' registers no wam_physics_spec_entry_point"
