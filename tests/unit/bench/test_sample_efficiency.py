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


def rsl_rl_console(tmp_path, rates, capsys) -> str:
    """What rsl-rl's own Logger prints for iterations with these success rates (None: no episode ended), 4 envs x
    24 steps per iteration."""
    import torch
    from rsl_rl.utils.logger import Logger
    from torch.utils.tensorboard import SummaryWriter

    logger = Logger(str(tmp_path), {"num_steps_per_env": 24, "algorithm": {}}, {}, 4, False, 1, 0, "cpu")
    logger.writer = SummaryWriter(str(tmp_path))
    capsys.readouterr()
    for it, rate in enumerate(rates):
        if rate is not None:
            extras = {
                "log": {"Metrics/success_rate": torch.tensor(rate), "Episode_Reward/success_rate": torch.tensor(7.0)}
            }
            logger.process_env_step(torch.ones(4), torch.tensor([1, 0, 0, 0]), extras)
        logger.log(it, 0, len(rates), 1.0, 0.5, {"surrogate": 0.1}, 1e-3, torch.ones(2), None)
        logger.ep_extras.clear()  # the runner clears them after each log
    logger.writer.close()
    return capsys.readouterr().out


def test_curve_reader_reads_rsl_rl_console_log(bench, tmp_path, capsys):
    """The reader against the text rsl-rl's own Logger prints: one point per iteration where episodes ended (the
    iteration without a reset prints no rate and adds none), ``Metrics/success_rate`` and not the reward term whose
    name also ends in ``success_rate``, env steps = iterations x envs x steps per env."""
    reader = bench.CurveReader()
    for line in rsl_rl_console(tmp_path, [0.0, None, 0.25, 1.0], capsys).splitlines(keepends=True):
        reader.feed(line)
    assert reader.steps == [96, 288, 384]
    assert reader.success == [0.0, 0.25, 1.0]
    assert reader.per_iteration == 96


def test_a_resumed_benchmark_reads_finished_runs_back_and_refuses_unfinished_ones(bench, tmp_path, capsys):
    setting = bench.TaskSetting("WAM-Cartpole", threshold=0.5, num_envs=4, max_iterations=10, seeds=(1,))
    run_dir = tmp_path / "WAM-Cartpole" / "wam_pretrained_seed1"
    run_dir.mkdir(parents=True)
    console = rsl_rl_console(tmp_path, [0.0, 0.5, 0.5, 0.5, 0.5, 0.5, 1.0], capsys)
    (run_dir / "train.log").write_text(console)
    (run_dir / "train.log").write_text(console.split("Learning iteration 5/")[0])  # interrupted before reaching it
    with pytest.raises(RuntimeError, match="unfinished run"):
        bench._train(setting, "wam_pretrained", 1, "cpu", tmp_path / "WAM-Cartpole", 10, 1000)
    (run_dir / "train.log").write_text(console)  # interrupted after reaching it: the rule would have stopped it there
    assert bench._train(setting, "wam_pretrained", 1, "cpu", tmp_path / "WAM-Cartpole", 10, 1000).reached == 1576
    (run_dir / "train.log").write_text(console + "Training time: 12.5 seconds\n[wam] run logged in somewhere\n")
    run = bench._train(setting, "wam_pretrained", 1, "cpu", tmp_path / "WAM-Cartpole", 10, 1000)
    # iterations 1-5 average 0.5: reached at iteration 5's 576 env steps, plus the 1000 of pretraining
    assert run.reached == 1576 and run.budget == 10 * 96 + 1000 and run.wall_time == 12.5
    assert run.steps[0] == 1096 and run.success[-1] == 1.0


def _run(bench, reached, budget=1000):
    return bench.Run("x", 1, [], [], reached, budget, 100, 0.0)


def test_ratio_to_ppo_bounds_a_censored_side(bench):
    ppo = [_run(bench, r) for r in (400, 600, 500)]
    assert bench.ratio_to_ppo([_run(bench, r) for r in (100, 300, 200)], ppo) == (0.4, "=")
    # the variant did not reach it in 2 of 3 seeds within 700 / 800 steps: its median exceeds 700
    late = [_run(bench, None, 700), _run(bench, 650, 900), _run(bench, None, 800)]
    assert bench.ratio_to_ppo(late, ppo) == (1.4, ">")
    # PPO did not reach it in 2 of 3 seeds within 2000 steps: the ratio is below 300 / 2000
    slow_ppo = [_run(bench, None, 2000), _run(bench, 1500, 2000), _run(bench, None, 2000)]
    assert bench.ratio_to_ppo([_run(bench, r) for r in (300, 200, 400)], slow_ppo) == (0.15, "<")
    assert bench.ratio_to_ppo(late, slow_ppo) == (None, None)
