"""``wam train-model`` end to end on a small linear-system dataset: overrides land in config.yaml and the
checkpoint, TensorBoard gets the validation k-step errors, ``--resume`` continues (a run saved before beta-NLL on the
plain NLL), bad input is one line, exit 2."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from wam_isaac.cli import main
from wam_isaac.training.checkpoint import load_checkpoint, save_checkpoint

SMALL = ["model.trunk.hidden=16", "model.head_hidden=16", "train.batch_size=32", "train.val_horizons=[1,4]"]
"""Overrides that keep the run to a second or two."""


def train_model(data, out, *extra: str, model: str = "mlp") -> None:
    args = ["train-model", "--data", str(data), "--model", model, "--history", "2", "--forecast", "4"]
    main([*args, "--out", str(out), *extra])


def exit_code_and_message(capsys, *args) -> tuple[int, str]:
    with pytest.raises(SystemExit) as raised:
        train_model(*args)
    return raised.value.code, capsys.readouterr().err.strip()


def test_train_then_resume(linear_data, tmp_path, capsys):
    out = tmp_path / "run"
    with pytest.raises(SystemExit) as raised:
        train_model(linear_data, out, "--epochs", "2", *SMALL, "train.lr=0.003", "train.save_every=1")
    assert raised.value.code == 0
    saved = OmegaConf.load(out / "config.yaml")
    assert saved.train.lr == 0.003 and saved.model.trunk.hidden == 16 and saved.train.history == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["last.pt", "model_1.pt", "model_2.pt"]
    assert load_checkpoint(out / "checkpoints" / "last.pt")["epoch"] == 2

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(out))
    events.Reload()
    assert [s.step for s in events.Scalars("val/ratio@4")] == [1, 2]
    assert [s.step for s in events.Scalars("val/error@4/pos")] == [1, 2]

    # as a run from before beta-NLL: no train.loss.dynamics_beta saved; it resumes on the plain NLL (beta 0)
    last = out / "checkpoints" / "last.pt"
    old = load_checkpoint(last)
    assert old["config"]["train"]["loss"].pop("dynamics_beta") == 0.5
    save_checkpoint(last, old)
    with pytest.raises(SystemExit) as raised:
        train_model(linear_data, out, "--resume", "--epochs", "3")
    assert raised.value.code == 0
    payload = load_checkpoint(last)
    assert payload["epoch"] == 3 and payload["config"]["train"]["lr"] == 0.003
    assert payload["config"]["train"]["loss"]["dynamics_beta"] == 0.0
    assert "epochs 2->3" in capsys.readouterr().out

    code, message = exit_code_and_message(capsys, linear_data, out, "--resume", "--epochs", "3")
    assert code == 2 and "already completed 3 of 3 epochs" in message
    code, message = exit_code_and_message(capsys, linear_data, out, *SMALL)
    assert code == 2 and "already holds a run; use --resume" in message


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (["train.nope=1"], "Key 'nope' not in 'TrainCfg'"),
        (["train.lr=fast"], "Value 'fast' of type 'str' could not be converted to Float"),
        (["lr=0.1"], "malformed override 'lr=0.1'"),
        (["--ensemble", "2", "--model", "joint"], "--ensemble applies to world models"),
        (["--resume"], "cannot resume"),
        (
            ["train.loss.dynamics_beta=1.5"],
            "train.loss.dynamics_beta must be in [0, 1] (0: the plain Gaussian NLL, 1: the squared error's gradient), "
            "got 1.5",
        ),
        (["train.loss.dynamics_beta=-0.1"], "train.loss.dynamics_beta must be in [0, 1]"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(linear_data, tmp_path, capsys, extra, expected):
    code, message = exit_code_and_message(capsys, linear_data, tmp_path / "run", *extra)
    assert code == 2
    assert expected in message and "\n" not in message
    assert not (tmp_path / "run").exists()  # nothing written


def test_a_dataset_without_world_model_keys_is_named(linear_data, tmp_path, capsys):
    import json

    manifest = json.loads((linear_data / "manifest.json").read_text())
    manifest["keys"] = {k: v for k, v in manifest["keys"].items() if not k.startswith("obs/world_model/")}
    data = tmp_path / "data"
    data.mkdir()
    (data / "manifest.json").write_text(json.dumps(manifest))
    code, message = exit_code_and_message(capsys, data, tmp_path / "run")
    assert code == 2 and "has no 'obs/world_model/*' keys" in message and manifest["task_id"] in message
