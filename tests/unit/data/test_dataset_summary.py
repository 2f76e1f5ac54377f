"""summarize: counts, success rate, keys, and the DR ranges actually sampled."""

from __future__ import annotations

import json

import numpy as np

from wam_isaac.data.summary import summarize


def test_summary_reports_counts_keys_and_dr_ranges(dataset):
    out_dir, episodes = dataset
    summary = summarize(out_dir)
    json.dumps(summary, allow_nan=False)  # strict JSON for `wam inspect --json`
    assert (summary["episodes"], summary["transitions"], summary["successes"]) == (5, 26, 3)
    assert summary["success_rate"] == 0.6 and summary["dropped_episodes"] == 0 and summary["shards"] == 3
    assert summary["episode_length"] == {"min": 1, "mean": 5.2, "max": 10}
    assert summary["keys"]["labels"] == {
        "labels/contact": {"shape": [4], "dtype": "bool", "unit": "", "description": ""}
    }
    assert summary["keys"]["obs"]["obs/policy"]["description"] == "episode id, step, 0.5"
    assert list(summary["keys"]["obs"]) == ["obs/policy"] and list(summary["keys"]["other"]) == ["rewards", "dones"]
    masses = np.stack([e.dr["robot/body_mass"] for e in episodes]).astype(np.float64)
    assert summary["dr_ranges"]["robot/body_mass"] == {
        "shape": [2], "min": masses.min(axis=0).tolist(), "max": masses.max(axis=0).tolist()}  # fmt: skip
    assert summary["dr_ranges"]["action/joint_pos/latency"] == {"shape": [], "min": 0.0, "max": 2.0}
    assert summary["unlisted_files"] == [] and summary["complete"] is True
