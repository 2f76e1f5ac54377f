"""The fidelity metric in physical units: zero on the truth, the hand-computed value on known offsets, the baselines,
the ensemble's spread, what training logs on a rollout."""

from __future__ import annotations

import math

import pytest
import torch
from cube_dataset import HISTORY, tiny_config
from cube_states import SCHEMA

from wam_isaac.evaluation.fidelity import evaluate_fidelity, forecast, rotation_split
from wam_isaac.evaluation.report import fidelity_lines
from wam_isaac.models import EnsembleWorldModel, model_cfg
from wam_isaac.models.rotations import quat_angle, quat_from_rotvec, quat_multiply, yaw_tilt_angles
from wam_isaac.training.metrics import baseline_forecasts, ensemble_spread, fidelity_table
from wam_isaac.training.run import load_model
from wam_isaac.training.sequences import SequenceTable
from wam_isaac.training.split import split_episodes

HORIZONS = [1, 4, 8]


def cube_windows(batch: int = 4, steps: int = 10) -> torch.Tensor:
    """Windows (B, steps, S) of a cube sliding at 0.5 m/s in x and spinning at 1 rad/s in yaw from yaw 3.0 rad (it
    crosses +-pi, stored w >= 0), the arm's joints moving at 0.1 rad/step, dt 0.04 s."""
    t = torch.arange(steps, dtype=torch.float64) * 0.04
    states = torch.zeros(batch, steps, SCHEMA.state_dim, dtype=torch.float64)
    states[..., 0:3] = (0.1 * torch.arange(steps, dtype=torch.float64))[:, None]
    states[..., 3:6] = 2.5
    states[..., 6] = 0.3 + 0.5 * t
    states[..., 8] = 0.425
    yaw = 3.0 + 1.0 * t
    quat = torch.stack((0 * yaw, 0 * yaw, torch.sin(yaw / 2), torch.cos(yaw / 2)), -1)
    states[..., 9:13] = torch.where(quat[:, 3:] < 0, -quat, quat)
    states[..., 13] = 0.5
    states[..., 18] = 1.0
    return states.float()


def test_the_truth_compared_with_itself_has_zero_error():
    truth = cube_windows()
    table = fidelity_table(truth[:, 0], truth, {"model": truth, "copy_last": truth}, SCHEMA, HORIZONS)
    assert list(table["units"]) == ["joint_pos", "joint_vel", "cube_pos", "cube_quat", "cube_lin_vel", "cube_ang_vel"]
    assert all(value == 0.0 for terms in table["error"].values() for values in terms.values() for value in values)


def test_known_offsets_give_the_hand_computed_errors_in_physical_units():
    """Half the windows are off from horizon 4 on by: the cube 3 cm in x and 4 cm in y (5 cm), 0.2 rad of yaw (across
    the +-pi cut), the joints by (0.1, 0.2, 0.2) rad; the other half are exact. RMS over windows: offset / sqrt(2)."""
    windows = cube_windows(batch=4)
    start, truth = windows[:, 0], windows[:, 1:]  # horizon k is truth[:, k - 1]
    predicted = truth.clone()
    off = slice(0, 2)
    predicted[off, 3:, 6:8] += torch.tensor([0.03, 0.04])
    turn = quat_from_rotvec(torch.tensor([0.0, 0.0, 0.2]))
    predicted[off, 3:, 9:13] = quat_multiply(turn.expand(2, 6, 4), predicted[off, 3:, 9:13])
    predicted[off, 3:, 0:3] += torch.tensor([0.1, 0.2, 0.2])
    copy_last = start[:, None].expand_as(truth)
    table = fidelity_table(start, truth, {"model": predicted, "copy_last": copy_last}, SCHEMA, HORIZONS)
    error = table["error"]["model"]
    half = 1 / math.sqrt(2)
    assert error["cube_pos"] == pytest.approx([0.0, 0.05 * half, 0.05 * half], abs=1e-6)
    assert error["cube_quat"] == pytest.approx([0.0, 0.2 * half, 0.2 * half], abs=1e-5)
    assert error["joint_pos"] == pytest.approx([0.0, math.sqrt(0.03) * half, math.sqrt(0.03) * half], abs=1e-6)
    assert error["cube_lin_vel"] == [0.0, 0.0, 0.0]
    # copy-last: the cube has slid 0.02 m and turned 0.04 rad per step
    copy = table["error"]["copy_last"]
    assert copy["cube_pos"] == pytest.approx([0.02 * k for k in HORIZONS], rel=1e-5)
    assert copy["cube_quat"] == pytest.approx([0.04 * k for k in HORIZONS], rel=1e-4)
    assert table["units"]["cube_pos"] == "m" and table["units"]["cube_quat"] == "rad"
    assert table["units"]["cube_ang_vel"] == "rad/s" and table["units"]["cube_lin_vel"] == "m/s"
    # the headline ratio and the normalized figure (over the one-step change of 2 cm, 0.04 rad)
    assert table["ratio"]["model"]["cube_pos"][1] == pytest.approx(0.05 * half / 0.08, rel=1e-5)
    assert table["normalized"]["model"]["cube_pos"][1] == pytest.approx(0.05 * half / 0.02, rel=1e-5)
    assert table["normalized"]["copy_last"]["cube_quat"] == pytest.approx([1.0, 4.0, 8.0], rel=1e-4)


def test_constant_velocity_continues_the_last_step_and_copy_last_holds_it():
    """On the cube sliding and spinning steadily, constant velocity is exact (across the yaw cut), copy-last is not."""
    states = cube_windows(steps=12)
    history = 4
    baselines = baseline_forecasts(states, history, SCHEMA)
    true = states[:, history:]
    torch.testing.assert_close(baselines["copy_last"], states[:, history - 1 : history].expand_as(true))
    table = fidelity_table(states[:, history - 1], true, baselines, SCHEMA, HORIZONS)
    constant = table["error"]["constant_velocity"]
    for term in ("joint_pos", "cube_pos", "cube_quat", "cube_lin_vel", "cube_ang_vel"):
        assert max(constant[term]) < 1e-5, (term, constant[term])
    assert table["error"]["copy_last"]["cube_pos"] == pytest.approx([0.02, 0.08, 0.16], rel=1e-5)


def test_yaw_and_tilt_of_known_rotations():
    """0.2 rad about z then 0.1 rad about x, applied in the world frame to a cube tilted 0.3 rad and turned 2 rad:
    yaw 0.2 and tilt 0.1 whatever the quaternions' signs; a half turn about x is all tilt, one about z all yaw."""
    cube = quat_from_rotvec(torch.tensor([0.3, 0.1, 2.0]))
    offset = quat_multiply(quat_from_rotvec(torch.tensor([0.1, 0.0, 0.0])), quat_from_rotvec(torch.tensor([0, 0, 0.2])))
    moved = quat_multiply(offset, cube)
    for a, b in ((cube, moved), (-cube, moved), (moved, -cube)):
        yaw, tilt = yaw_tilt_angles(a, b)
        assert (float(yaw), float(tilt)) == pytest.approx((0.2, 0.1), abs=1e-6)
    assert float(quat_angle(cube, moved)) == pytest.approx(math.hypot(0.2, 0.1), abs=2e-3)  # about in quadrature
    identity = torch.tensor([0.0, 0.0, 0.0, 1.0])
    half_x, half_z = torch.tensor([1.0, 0.0, 0.0, 0.0]), torch.tensor([0.0, 0.0, 1.0, 0.0])
    assert [float(v) for v in yaw_tilt_angles(identity, half_x)] == pytest.approx([0.0, math.pi])
    assert [float(v) for v in yaw_tilt_angles(identity, half_z)] == pytest.approx([math.pi, 0.0])


def test_the_rotation_split_of_known_offsets_and_its_report_rows():
    """Half the windows turned 0.2 rad about z and tilted 0.1 rad about x from horizon 4 on: the model's yaw / tilt
    are 0.2 / 0.1 over sqrt(2) there and 0 before; copy-last's tilt is 0 (the cube only spins) and its yaw is the
    spin since the last true state (1 rad/s x 0.04 s per step)."""
    windows = cube_windows(batch=4)
    start, truth = windows[:, 0], windows[:, 1:]
    predicted = truth.clone()
    offset = quat_multiply(quat_from_rotvec(torch.tensor([0.1, 0.0, 0.0])), quat_from_rotvec(torch.tensor([0, 0, 0.2])))
    predicted[:2, 3:, 9:13] = quat_multiply(offset.expand(2, 6, 4), predicted[:2, 3:, 9:13])
    copy_last = start[:, None].expand_as(truth)
    split = rotation_split(truth, {"model": predicted, "copy_last": copy_last}, SCHEMA, HORIZONS)
    assert list(split) == ["cube_quat"]
    assert split["cube_quat"]["yaw"]["model"] == pytest.approx([0.0, 0.2 / math.sqrt(2), 0.2 / math.sqrt(2)], abs=1e-5)
    assert split["cube_quat"]["tilt"]["model"] == pytest.approx([0.0, 0.1 / math.sqrt(2), 0.1 / math.sqrt(2)], abs=1e-5)
    assert split["cube_quat"]["yaw"]["copy_last"] == pytest.approx([0.04, 0.16, 0.32], abs=1e-5)
    assert split["cube_quat"]["tilt"]["copy_last"] == pytest.approx([0.0, 0.0, 0.0], abs=1e-5)
    table = fidelity_table(start, truth, {"model": predicted, "copy_last": copy_last}, SCHEMA, HORIZONS)
    report = {"horizons": HORIZONS, "windows": 4, "episodes": 1, "skipped_episodes": 0, **table}
    lines = fidelity_lines({**report, "model_over_copy_last": table["ratio"]["model"], "rotation_split": split})
    yaw_row = next(i for i, line in enumerate(lines) if "cube_quat yaw [rad]" in line)
    assert lines[yaw_row].split()[-4:] == ["model", "0.0000", "0.1414", "0.1414"]
    assert lines[yaw_row + 2].split()[-3:] == ["0.000", "0.884", "0.442"]  # model / copy-last: 0.1414 / 0.16, / 0.32
    assert any("cube_quat tilt [rad]" in line for line in lines[yaw_row:])


def test_ensemble_spread_is_the_members_rms_distance_from_the_mean():
    mean = cube_windows()
    members = mean[None].repeat(2, 1, 1, 1)
    members[0, ..., 6] += 0.01  # one member 1 cm ahead in x, the other 1 cm behind
    members[1, ..., 6] -= 0.01
    spread = ensemble_spread(members, mean, SCHEMA, HORIZONS)
    assert spread["cube_pos"] == pytest.approx([0.01] * 3, rel=1e-5)
    assert spread["cube_quat"] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize("ensemble", [1, 3])
def test_the_trainers_validation_errors_equal_a_hand_computed_rollout_error(cube_data, tmp_path, ensemble):
    """What training logs as ``val/error@k/cube_pos`` is the RMS over windows of the (members' mean) rollout's distance
    from the truth [m]; ``val/ratio@k/cube_pos`` divides it by copy-last's."""
    from dataclasses import replace

    from wam_isaac.training.run import make_trainer

    cfg = tiny_config(cube_data, tmp_path, kind="mlp", ensemble=ensemble)
    cfg.train = replace(cfg.train, val_horizons=[1, 3, 8])
    trainer = make_trainer(cfg, log=None)
    figures = trainer.validate()
    batch = trainer._val_batch(HISTORY + 8)
    with torch.no_grad():
        members = trainer.model.members if ensemble > 1 else [trainer.model]
        rollouts = [m.rollout(batch.states, batch.instruction, batch.actions, HISTORY).states for m in members]
    cube = SCHEMA.term("cube_pos")
    predicted = torch.stack(rollouts).mean(0)[..., cube.start : cube.stop].double()
    true = batch.states[:, HISTORY:, cube.start : cube.stop].double()
    held = batch.states[:, HISTORY - 1 : HISTORY, cube.start : cube.stop].double()
    for k in (1, 3, 8):
        expected = (predicted[:, k - 1] - true[:, k - 1]).norm(dim=-1).square().mean().sqrt()
        copy_last = (held[:, 0] - true[:, k - 1]).norm(dim=-1).square().mean().sqrt()
        assert figures[f"error@{k}/cube_pos"] == pytest.approx(float(expected), rel=1e-4)
        assert figures[f"ratio@{k}/cube_pos"] == pytest.approx(float(expected / copy_last), rel=1e-4)


def test_an_ensemble_is_scored_on_its_members_mean_trajectory(cube_data):
    torch.manual_seed(0)
    ensemble = EnsembleWorldModel(SCHEMA, model_cfg("mlp", ensemble=3, head_hidden=16))
    table = SequenceTable(cube_data, SCHEMA)
    batch = table.gather(table.window_starts(HISTORY + 4, 8), HISTORY + 4)
    mean, members, _ = forecast(ensemble, batch.states, batch.instruction, batch.actions, HISTORY)
    with torch.no_grad():
        expected = torch.stack(
            [m.rollout(batch.states, batch.instruction, batch.actions, HISTORY).states for m in ensemble.members]
        )
    torch.testing.assert_close(members, expected)
    quat = SCHEMA.term("cube_quat")
    vectors = [i for i in range(SCHEMA.state_dim) if not quat.start <= i < quat.stop]
    torch.testing.assert_close(mean[..., vectors], members.mean(0)[..., vectors])
    torch.testing.assert_close(mean[..., quat.start : quat.stop].norm(dim=-1), torch.ones(mean.shape[:2]))
    spread = ensemble_spread(members, mean, SCHEMA, [1, 4])
    assert spread["cube_pos"][0] > 0.0  # independently initialized members disagree


def test_fidelity_uses_windows_of_history_plus_the_longest_horizon_and_counts_the_short_episodes(
    cube_data, joint_checkpoint
):
    model, cfg, _ = load_model(joint_checkpoint)
    val_ids = split_episodes(cube_data, cfg.train.val_fraction, cfg.train.seed, cfg.train.split)[1]
    table = SequenceTable(cube_data, model.schema, val_ids)
    result = evaluate_fidelity(model, table, HISTORY, [16, 1, 4], stride=8)
    long_enough = int((table.rows_per_episode >= HISTORY + 16).sum())  # windows may end on s_T
    assert result.horizons == [1, 4, 16]
    assert (result.episodes, result.skipped_episodes) == (long_enough, len(val_ids) - long_enough)
    assert result.windows == 2 * long_enough  # starts 0 and 8 of each 30-step episode
    assert result.predicted.shape == result.true.shape == (result.windows, 17, SCHEMA.state_dim)
    torch.testing.assert_close(result.predicted[:, 0], result.true[:, 0])  # both start at the last true state
    assert result.ensemble_spread is None
    assert list(result.rotation_split) == ["cube_quat"]
    for part in ("yaw", "tilt"):
        assert set(result.rotation_split["cube_quat"][part]) == {"model", "copy_last", "constant_velocity"}
        assert all(len(v) == 3 for v in result.rotation_split["cube_quat"][part].values())
    for predictor in ("model", "copy_last", "constant_velocity"):
        assert result.baselines.get(predictor, result.predicted).shape == result.true.shape
        values = result.table["error"][predictor]["cube_pos"]
        assert len(values) == 3 and all(math.isfinite(v) for v in values)
    with pytest.raises(ValueError, match="no validation episode has 104 steps"):
        evaluate_fidelity(model, table, HISTORY, [100])
