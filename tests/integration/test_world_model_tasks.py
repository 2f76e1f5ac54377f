"""Every task trains: ``wam generate`` -> ``wam train-model`` -> ``wam eval`` on a small dataset of each shipped task
(no instruction group in WAM-Cartpole, a base quaternion and contacts in WAM-Quadruped-Flat). The report's fidelity
covers every state term in physical units, its baselines equal a recomputation from the stored episodes, the split
by env keeps each env on one side, and the trained model beats copy-last one step ahead where the state moves."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from wam_isaac.cli import main
from wam_isaac.data import load_manifest, read_episode
from wam_isaac.data.reader import episode_table
from wam_isaac.models.rotations import quat_angle
from wam_isaac.training.split import split_episodes

pytestmark = pytest.mark.integration

HISTORY, FORECAST, HORIZONS = 4, 4, [1, 4]
TASKS = {
    # task: (behaviour policy, a state term that moves every step)
    "WAM-Cartpole": ("scripted", "joint_pos"),
    "WAM-Push-Cube": ("scripted", "joint_pos"),
    "WAM-Quadruped-Flat": ("random", "joint_pos"),
}


def run_cli(*args: str) -> None:
    with pytest.raises(SystemExit) as raised:
        main(list(args))
    assert raised.value.code == 0, f"wam {args[0]} exited with {raised.value.code}"


@pytest.fixture(scope="module", params=list(TASKS))
def trained(request, tmp_path_factory):
    """A 8-env x 60-step dataset of the task, a tiny GRU trained on it for 3 epochs, its ``wam eval`` report."""
    task = request.param
    policy, _ = TASKS[task]
    root = tmp_path_factory.mktemp(task)
    data, run, out = root / "data", root / "run", root / "eval"
    run_cli("generate", "--task", task, "--num_envs", "8", "--steps", "60", "--policy", policy, "--out", str(data))
    run_cli(
        "train-model", "--data", str(data), "--model", "gru", "--history", str(HISTORY), "--forecast",
        str(FORECAST), "--epochs", "3", "--out", str(run), "model.trunk.hidden=32", "model.head_hidden=32",
        "train.batch_size=16", "train.val_fraction=0.25", "train.lr=0.003", f"train.val_horizons={HORIZONS}",
    )  # fmt: skip
    run_cli(
        "eval", "--checkpoint", str(run / "checkpoints" / "last.pt"), "--data", str(data), "--out", str(out),
        "--horizons", *map(str, HORIZONS), "--stride", "4",
    )  # fmt: skip
    return task, data, json.loads((out / "eval.json").read_text())


def state_terms(data) -> list[str]:
    return [key.rsplit("/", 1)[1] for key in load_manifest(data)["keys"] if key.startswith("obs/world_model/")]


def test_the_split_by_env_never_puts_one_env_on_both_sides(trained):
    _, data, _ = trained
    train_ids, val_ids = split_episodes(data, 0.25, seed=0, split="env")
    table = episode_table(load_manifest(data))
    train_envs = {table[i].env_id for i in train_ids}
    val_envs = {table[i].env_id for i in val_ids}
    assert val_envs and train_envs and not train_envs & val_envs
    assert sorted(train_ids + val_ids) == sorted(table)
    assert train_envs | val_envs == set(range(8))


def test_the_report_has_physical_unit_fidelity_for_every_state_term(trained):
    task, data, report = trained
    fidelity = report["fidelity"]
    terms = state_terms(data)
    assert report["task"] == task and fidelity["horizons"] == HORIZONS and fidelity["windows"] > 0
    assert list(fidelity["units"]) == terms
    for predictor in ("model", "copy_last", "constant_velocity"):
        for term in terms:
            values = fidelity["error"][predictor][term]
            assert len(values) == len(HORIZONS) and all(math.isfinite(v) and v >= 0 for v in values), (predictor, term)
    quaternions = [term for term in terms if term.endswith("quat")]
    assert all(fidelity["units"][term] == "rad" for term in quaternions)
    split = fidelity["rotation_split"]  # yaw / tilt of every rotation term (the cube's, the base's; none on Cartpole)
    assert sorted(split) == sorted(quaternions)
    for term in quaternions:
        for predictor in ("model", "copy_last", "constant_velocity"):
            yaw, tilt = split[term]["yaw"][predictor], split[term]["tilt"][predictor]
            angle = fidelity["error"][predictor][term]
            assert math.hypot(yaw[0], tilt[0]) == pytest.approx(angle[0], rel=0.05), (term, predictor)
    ratio = fidelity["model_over_copy_last"]
    for term in terms:
        model, copy_last = fidelity["error"]["model"][term], fidelity["error"]["copy_last"][term]
        expected = [m / c for m, c in zip(model, copy_last, strict=True)]
        assert ratio[term] == pytest.approx(expected, rel=1e-6)


def test_the_baselines_equal_a_recomputation_from_the_stored_episodes(trained):
    """Copy-last's error at each horizon, recomputed with NumPy from the validation episodes: the RMS over windows
    (starts every 4 steps) of the Euclidean / joint-RMS / geodesic error of holding ``s_{H-1}``."""
    _, data, report = trained
    fidelity = report["fidelity"]
    _, val_ids = split_episodes(data, 0.25, seed=0, split="env")
    span = HISTORY + max(HORIZONS)
    errors: dict[str, list[list[float]]] = {term: [[] for _ in HORIZONS] for term in state_terms(data)}
    for episode_id in val_ids:
        episode = read_episode(data, episode_id)
        for start in range(0, episode.num_samples - span + 1, 4):
            last = start + HISTORY - 1
            for term in errors:
                values = np.asarray(episode.data[f"obs/world_model/{term}"], dtype=np.float64)
                for index, k in enumerate(HORIZONS):
                    held, true = values[last], values[last + k]
                    if term.endswith("quat"):
                        error = float(quat_angle(torch.from_numpy(held), torch.from_numpy(true)))
                    elif term.startswith("joint_"):
                        error = float(np.sqrt(np.mean((held - true) ** 2)))
                    else:
                        error = float(np.linalg.norm(held - true))
                    errors[term][index].append(error)
    for term, per_horizon in errors.items():
        expected = [math.sqrt(np.mean(np.square(values))) for values in per_horizon]
        assert fidelity["error"]["copy_last"][term] == pytest.approx(expected, rel=1e-4, abs=1e-7), term
    assert fidelity["windows"] == len(errors[next(iter(errors))][0])


def test_the_trained_model_beats_copy_last_one_step_ahead_where_the_state_moves(trained):
    task, _, report = trained
    _, moving = TASKS[task]
    fidelity = report["fidelity"]
    assert fidelity["scale"][moving] > 0.0
    assert fidelity["model_over_copy_last"][moving][0] < 1.0, fidelity["model_over_copy_last"]
