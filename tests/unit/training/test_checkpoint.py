"""Checkpoints: round trip, read as weights only, and refusal of files that are not ours (without running their
pickled code)."""

from __future__ import annotations

import pytest
import torch

from wam_isaac.training.checkpoint import FORMAT, VERSION, CheckpointError, load_checkpoint, save_checkpoint


class WritesMarker:
    """Unpickling this object calls ``open(marker, "w")``: creates the marker file (stands for arbitrary code)."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_round_trip_reads_weights_only(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "run" / "last.pt", {"model": {"w": torch.arange(3.0)}, "epoch": 2})
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temp file left behind
    calls = []
    original = torch.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("weights_only"))
        return original(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    payload = load_checkpoint(path)
    assert calls == [True]
    assert (payload["format"], payload["version"], payload["epoch"]) == (FORMAT, VERSION, 2)
    assert torch.equal(payload["model"]["w"], torch.arange(3.0))


def test_plain_torch_file_is_refused_with_a_clear_message(tmp_path):
    path = tmp_path / "weights.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, path)
    with pytest.raises(CheckpointError, match=f"'{path}' is not a wam_isaac checkpoint \\(no format '{FORMAT}'"):
        load_checkpoint(path)


def test_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "marker"
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "model": WritesMarker(str(marker))}, path)
    with pytest.raises(
        CheckpointError, match="not a wam_isaac checkpoint \\(refused to unpickle it as weights only"
    ) as error:
        load_checkpoint(path)
    assert not marker.exists()
    # the message names what was refused, in one line, without torch's advice to load it with weights_only=False
    message = str(error.value)
    assert "Unsupported global" in message and "open" in message
    assert "\n" not in message and "\x1b" not in message and "weights_only` set to `False" not in message
    # the payload is live: a full unpickle would have run it
    torch.load(path, weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "EOFError"),
        (b"data: /tmp/dataset\nepochs: 3\n", "Unsupported operand"),
        (b"\x89HDF\r\n", "Unsupported operand"),
    ],
)
def test_a_file_that_is_no_torch_file_is_refused(tmp_path, content, reason):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=f"is not a wam_isaac checkpoint \\(refused .*: {reason}"):
        load_checkpoint(path)


def test_missing_file_and_other_version(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nothing.pt")
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": VERSION + 1}, path)
    with pytest.raises(CheckpointError, match=f"checkpoint version {VERSION + 1}; this build reads {VERSION}"):
        load_checkpoint(path)
