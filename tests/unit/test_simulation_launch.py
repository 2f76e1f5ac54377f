"""wam_isaac.envs.simulation.launched: a refusal raised inside the block leaves after the simulation has closed
cleanly (exit code 0, no traceback printed by launch_simulation); any other exception goes through launch_simulation
as before. The fake below does what Isaac Lab's does: print the traceback of an exception leaving its block, close
with exit code 1."""

from __future__ import annotations

import contextlib
import traceback

import pytest

import isaaclab.app

from wam_isaac.cli.common import simulation
from wam_isaac.cli.errors import UsageError
from wam_isaac.envs.simulation import launched
from wam_isaac.export.errors import ExportError


@pytest.fixture
def closed(monkeypatch) -> list[int]:
    codes: list[int] = []

    @contextlib.contextmanager
    def fake_launch(env_cfg, args):
        code = 0
        try:
            yield None
        except Exception:
            code = 1
            traceback.print_exc()
            raise
        finally:
            codes.append(code)

    monkeypatch.setattr(isaaclab.app, "launch_simulation", fake_launch)
    return codes


@pytest.mark.parametrize(("enter", "refusal"), [(lambda: launched(None, "cpu", (ExportError,)), ExportError),
                                                (lambda: simulation(None, "cpu"), UsageError)])  # fmt: skip
def test_a_refusal_leaves_after_a_clean_close_without_a_traceback(closed, capsys, enter, refusal):
    with pytest.raises(refusal, match="one line"), enter():
        raise refusal("one line")
    assert closed == [0] and "Traceback" not in capsys.readouterr().err


def test_other_exceptions_go_through_launch_simulation(closed, capsys):
    with pytest.raises(RuntimeError, match="crash"), launched(None, "cpu", (ExportError,)):
        raise RuntimeError("crash")
    assert closed == [1] and "Traceback" in capsys.readouterr().err
    # not a refusal of this block: a usage-error block lets it crash
    with pytest.raises(ExportError), simulation(None, "cpu"):
        raise ExportError("not a usage error")
    assert closed == [1, 1]
