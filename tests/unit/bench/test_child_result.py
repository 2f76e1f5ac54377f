"""``wam_isaac.cli.bench.child_result``: the benchmarks' one way to run a measurement in a fresh process."""

from __future__ import annotations

import pytest

from wam_isaac.cli.bench import child_result


def test_the_last_result_line_is_returned_with_the_arguments_passed():
    code = (
        "import sys, json; print('RESULT ' + json.dumps({'x': 1})); print('noise'); "
        "print('RESULT ' + json.dumps({'x': int(sys.argv[1]) * 2}))"
    )
    assert child_result(code, ["21"], "double") == {"x": 42}


@pytest.mark.parametrize(
    ("code", "tail"),
    [
        (
            "import sys; print('RESULT {}'); sys.stderr.write('a\\nb\\nc\\nout of memory\\n'); sys.exit(3)",
            "b | c | out of memory",
        ),
        ("print('no result here')", "no result here"),
    ],
)
def test_a_failed_or_silent_process_names_the_run_and_its_last_lines(code, tail):
    with pytest.raises(RuntimeError, match=r"^camera WAM-Push-Cube: benchmark process failed: ") as error:
        child_result(code, [], "camera WAM-Push-Cube")
    assert str(error.value).endswith(tail)
