"""``wam transfer-eval`` end to end on WAM-Cartpole (CPU, 4 envs, short episodes): a freshly initialized PPO policy
exported, then run by the deploy runtime in the simulator under the training conditions, observation delay and
noise, and another solver setting; the JSON report holds what each condition changed and its figures."""

from __future__ import annotations

import json
import math

import pytest
from export_helpers import deterministic_actuation, export_in

from wam_isaac.cli import main

pytestmark = pytest.mark.integration

TASK = "WAM-Cartpole"
EPISODE_S = 0.25


def test_transfer_eval_reports_every_condition(make_env, tmp_path):
    with make_env(TASK, num_envs=4, configure=deterministic_actuation) as env:
        result, _ = export_in(env, TASK, tmp_path)
    control_period = result.metadata["control"]["control_period"]
    report_path = tmp_path / "transfer.json"
    args = ["transfer-eval", "--exported", str(result.out), "--task", TASK, "--num_envs", "4", "--episodes", "4"]
    args += ["--conditions", "training", "obs_delay_noise", "solver", "--json", str(report_path)]
    with pytest.raises(SystemExit) as exit_info:
        main([*args, f"env.episode_length_s={EPISODE_S}"])
    assert exit_info.value.code == 0
    report = json.loads(report_path.read_text())["conditions"]
    assert list(report) == ["training", "obs_delay_noise", "solver"]
    limit = math.ceil(EPISODE_S / control_period)  # Isaac Lab's max_episode_length
    for name, figures in report.items():
        assert figures["episodes"] == 4, name
        assert 1 <= figures["mean_episode_length"] <= limit, name
        # Cartpole's success is survival to the time limit: all episodes succeed iff all lasted the limit
        assert (figures["success_rate"] == 1.0) == (figures["mean_episode_length"] == limit), name
        assert figures["alarm_rate"] is None and figures["judged_steps"] == 0  # a policy exported without world model
        assert figures["episodes_alarmed"] is None and figures["successes_alarmed"] is None, name
        assert figures["failures_alarmed"] is None, name
    assert report["training"]["changes"] == {}
    assert report["obs_delay_noise"]["changes"] == {"observation_delay_steps": 2, "observation_noise_factor": 2.0}
    assert report["solver"]["changes"] == {"sim.physics.num_substeps": {"trained": 1, "evaluated": 2}}
    # the delayed, noisier input changed what the policy did, and so the rewards it collected
    assert report["obs_delay_noise"]["mean_return"] != pytest.approx(report["training"]["mean_return"], rel=1e-6)
