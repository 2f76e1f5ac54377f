"""``wam train-pixel``: a dataset without frames or a negative --ssim_weight is refused in one line (exit 2, nothing
written); on a tiny frame dataset it writes model.pt, strip.png and an eval.json scoring horizons 1/8/32 against
copy-last, with the structural loss term weighed in."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from wam_isaac.data.episode import Episode
from wam_isaac.data.specs import KeySpec
from wam_isaac.data.writer import DatasetWriter


def wam(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "wam_isaac", *args], capture_output=True, text=True, timeout=300)


def _write(out, frame_shape: tuple[int, ...], dtype: str, lengths=(40, 40, 40)) -> None:
    specs = {"obs/camera": KeySpec(frame_shape, dtype), "actions": KeySpec((2,), "float32")}
    rng = np.random.default_rng(0)
    episodes = []
    for env_id, length in enumerate(lengths):
        frames = rng.integers(0, 256, (length, *frame_shape)).astype(dtype)
        data = {"obs/camera": frames, "actions": rng.normal(size=(length, 2)).astype(np.float32)}
        episodes.append(Episode(data, env_id, 0, False, {}, {"budget_end": 0}))
    with DatasetWriter(out, "WAM-Test", "cafe", specs) as writer:
        writer.write_many(episodes)


def test_a_dataset_without_frames_is_refused_in_one_line(tmp_path):
    _write(tmp_path / "d", (16, 16, 3), "float32")  # normalized images are not frames
    result = wam("train-pixel", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "run"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "has no frames under 'obs/camera'" in errors[0], result.stderr
    assert not (tmp_path / "run").exists()
    negative = wam("train-pixel", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "run"), "--ssim_weight", "-1")
    assert negative.returncode == 2 and "--ssim_weight: '-1' is not a number >= 0" in negative.stderr.splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_negative_pretraining_is_refused(tmp_path, capsys):
    from wam_isaac.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["train-pixel", "--data", str(tmp_path), "--out", str(tmp_path / "run"), "--pretrain_updates", "-3"])
    assert exit_info.value.code == 2
    assert "--pretrain_updates: '-3' is not an integer >= 0" in capsys.readouterr().err.splitlines()[-1]
    assert not (tmp_path / "run").exists()


def test_a_tiny_run_scores_every_horizon(tmp_path):
    _write(tmp_path / "d", (16, 16, 3), "uint8")
    run = tmp_path / "run"
    result = wam("train-pixel", "--data", str(tmp_path / "d"), "--out", str(run), "--updates", "2", "--batch", "2",
                 "--ssim_weight", "0.5", "--pretrain_updates", "3")  # fmt: skip
    assert result.returncode == 0, result.stderr
    report = json.loads((run / "eval.json").read_text())
    losses = report["final_losses"]  # the structural term weighed in
    assert losses["total"] == pytest.approx(
        losses["reconstruction"] + losses["prediction"] + 0.5 * losses["structural"] + 0.01 * losses["gate"]
    )
    assert set(report["horizons"]) == {"1", "8", "32"}
    # random frames: after 3 reconstruction updates the sigmoid decoder is far from them (1/12 for uniform noise)
    assert 0.02 < report["pretrain_reconstruction"] < 0.5 and report["pretrain_seconds"] > 0
    assert report["val_episodes"] == 1 and report["windows"] == 1  # one held-out env; 40 steps fit one window of 36
    for figures in report["horizons"].values():  # random frames: no better than about 7.7 dB (uniform noise)
        assert 5.0 < figures["copy_last_psnr"] < 10.0 and np.isfinite(figures["psnr"])
    assert (run / "strip.png").stat().st_size > 0
    payload = torch.load(run / "model.pt", weights_only=False)
    assert set(payload) == {"format", "model", "cfg", "action_dim", "schema", "data"} and payload["schema"] is None


def test_wam_eval_scores_a_pixel_checkpoint(tmp_path, capsys):
    """``wam eval`` on a 1-update pixel world model with a state read-out and an instruction, on frames whose
    brightness rises one level a step and states that rise 0.01 a step: copy-last's PSNR at horizon h is
    20 log10(255 / h), as torchmetrics computes it on those frames, and copy-last-state's error is 0.01 h sqrt(3);
    only the held-out env is scored."""
    from torchmetrics.functional.image import peak_signal_noise_ratio

    from wam_isaac.cli import main

    specs = {"obs/camera": KeySpec((16, 16, 3), "uint8"), "obs/world_model/pos": KeySpec((3,), "float32"),
             "obs/instruction/goal": KeySpec((2,), "float32"), "actions": KeySpec((2,), "float32")}  # fmt: skip
    episodes = []
    for env_id in range(3):
        steps = np.arange(40)
        frames = (10 * env_id + steps).astype(np.uint8)[:, None, None, None] * np.ones((1, 16, 16, 3), np.uint8)
        states = (0.1 * env_id + 0.01 * steps)[:, None].repeat(3, axis=1).astype(np.float32)
        goal = np.full((40, 2), env_id, np.float32)
        data = {"obs/camera": frames, "obs/world_model/pos": states, "obs/instruction/goal": goal,
                "actions": np.zeros((40, 2), np.float32)}  # fmt: skip
        episodes.append(Episode(data, env_id, 0, False, {}, {"budget_end": 0}))
    with DatasetWriter(tmp_path / "d", "WAM-Test", "cafe", specs) as writer:
        writer.write_many(episodes)
    run, out = tmp_path / "run", tmp_path / "eval"
    for argv in (["train-pixel", "--data", str(tmp_path / "d"), "--out", str(run), "--updates", "1", "--batch", "2"],
                 ["eval", "--checkpoint", str(run / "model.pt"), "--data", str(tmp_path / "d"), "--out", str(out),
                  "--horizons", "1", "8", "32"]):  # fmt: skip
        with pytest.raises(SystemExit) as exit_code:
            main(argv)
        assert exit_code.value.code == 0
    report = json.loads((out / "eval.json").read_text())
    assert report["model_kind"] == "pixel_world" and report["episodes_scored"].startswith("validation split by env")
    visual = report["visual_fidelity"]
    assert visual["windows"] == 1 and visual["episodes"] == 1  # one held-out env; 40 steps fit one window of 36
    for h in (1, 8, 32):
        copy_last = visual["horizons"][str(h)]["copy_last_psnr"]
        library = peak_signal_noise_ratio(torch.full((1, 3, 16, 16), 0.0), torch.full((1, 3, 16, 16), h / 255.0),
                                          data_range=1.0).item()  # fmt: skip
        assert copy_last == pytest.approx(20 * np.log10(255 / h), abs=1e-3) and copy_last == pytest.approx(library)
        assert np.isfinite(visual["horizons"][str(h)]["psnr"])
    readout = report["state_readout"]
    assert readout["copy_last"]["pos"] == pytest.approx([0.01 * h * np.sqrt(3) for h in (1, 8, 32)], rel=1e-4)
    assert report["physics"]["applicable"] is False and report["closed_loop"]["applicable"] is False
    assert (out / "strip.png").stat().st_size > 0 and (out / "rollout.mp4").stat().st_size > 0
    with pytest.raises(SystemExit) as exit_code:  # a second run does not replace the report unasked
        main(["eval", "--checkpoint", str(run / "model.pt"), "--data", str(tmp_path / "d"), "--out", str(out)])
    assert exit_code.value.code == 2 and "pass --overwrite" in capsys.readouterr().err.splitlines()[-1]
