"""The sample-efficiency benchmark's threshold and aggregation rules, on hand-made curves."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[3] / "bench" / "sample_efficiency.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("wam_bench_sample_efficiency", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module through sys.modules
    spec.loader.exec_module(module)
    return module


def test_threshold_needs_the_smoothed_rate_not_one_lucky_iteration(bench):
    steps = [100 * (i + 1) for i in range(10)]
    # one spike at iteration 2 (1.0) must not count; the 5-iteration mean first reaches 0.5 at iteration 7:
    # (0.4 + 0.5 + 0.5 + 0.5 + 0.6) / 5 = 0.5
    success = [0.0, 0.0, 1.0, 0.0, 0.4, 0.5, 0.5, 0.5, 0.6, 0.9]
    assert bench.steps_to_threshold(steps, success, 0.5) == 900
    assert bench.steps_to_threshold(steps, success, 0.5, offset=5000) == 5900
    assert bench.steps_to_threshold(steps, success, 0.95) is None


def test_fewer_points_than_the_window_never_reach(bench):
    assert bench.steps_to_threshold([1, 2, 3], [1.0, 1.0, 1.0], 0.5) is None


def test_median_needs_most_seeds_to_reach(bench):
    assert bench._median_or_none([300, None, 100]) == 200.0  # 2 of 3 reached: median of the reached
    assert bench._median_or_none([300, None, None]) is None
    assert bench._median_or_none([None, None]) is None


def test_curve_reads_a_run_directory_as_isaac_lab_writes_it(bench, tmp_path):
    """Isaac Lab's params/agent.yaml holds python tuples (``!!python/tuple``), which ``yaml.safe_load`` refuses."""
    from torch.utils.tensorboard import SummaryWriter

    (tmp_path / "params").mkdir()
    (tmp_path / "params" / "agent.yaml").write_text(
        "num_steps_per_env: 16\nactor:\n  std_range: !!python/tuple\n  - 0.0\n  - 1.0\n"
    )
    writer = SummaryWriter(str(tmp_path))
    for step, value in enumerate([0.0, 0.25, 1.0]):
        writer.add_scalar("Metrics/success_rate", value, step)
    writer.close()
    assert bench._curve(tmp_path, 8) == ([128, 256, 384], [0.0, 0.25, 1.0])
