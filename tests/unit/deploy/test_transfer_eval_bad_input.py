"""``wam transfer-eval`` on bad input: one line naming the problem, exit 2, no report written, no simulator started
(every case is refused before the env would be built)."""

from __future__ import annotations

import json

import pytest

from wam_isaac.cli import main

TASK = "WAM-Cartpole"


def retarget(export_dir, **changes) -> None:
    """Edit ``metadata.json`` (not checksummed: the files it lists are) of a synthetic export."""
    path = export_dir / "metadata.json"
    metadata = json.loads(path.read_text())
    for dotted, value in changes.items():
        node, *keys = [metadata, *dotted.split("__")]
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    path.write_text(json.dumps(metadata))


def run_wam(capsys, *args):
    with pytest.raises(SystemExit) as exit_info:
        main(["transfer-eval", *map(str, args)])
    return exit_info.value.code, capsys.readouterr().err


def test_bad_exports_and_arguments_are_one_line_exit_2_without_a_report(mlp_export, tmp_path, capsys):
    export_dir, _ = mlp_export
    report = tmp_path / "report.json"
    base = ["--exported", export_dir, "--task", TASK, "--json", report]

    # the synthetic export is for task 'synthetic': refused by name
    code, err = run_wam(capsys, *base)
    assert code == 2 and "was exported for synthetic, not --task WAM-Cartpole" in err, err
    assert err.count("\n") == 1 and err.startswith("wam transfer-eval: error: ")

    retarget(export_dir, task=TASK)
    cases = {
        "holds no metadata.json": ["--exported", tmp_path / "nothing_here", "--task", TASK, "--json", report],
        "takes env.<field>=... overrides only": [*base, "agent.seed=1"],
        "directory": ["--exported", export_dir, "--task", TASK, "--json", tmp_path / "gone" / "r.json"],
    }
    for message, args in cases.items():
        code, err = run_wam(capsys, *args)
        assert code == 2 and err.count("\n") == 1 and message in err, (message, err)

    # a layout the runtime refuses (found by Policy.load, before any env is built)
    retarget(export_dir, observation__size=15)
    code, err = run_wam(capsys, *base)
    assert code == 2 and err.count("\n") == 1, err
    assert "observation terms add up to 14 values, the network reads 15" in err, err
    retarget(export_dir, observation__size=14)

    # a file changed after export
    with open(export_dir / "policy.onnx", "ab") as f:
        f.write(b"\0")
    code, err = run_wam(capsys, *base)
    assert code == 2 and err.count("\n") == 1 and "policy.onnx: sha256 differs from metadata.json" in err, err

    # a world model only
    retarget(export_dir, policy=None, files={})
    code, err = run_wam(capsys, *base)
    assert code == 2 and err.count("\n") == 1 and "holds a world model only; transfer-eval runs a policy" in err, err

    assert not report.exists() and not list(tmp_path.glob(".report.json*"))
