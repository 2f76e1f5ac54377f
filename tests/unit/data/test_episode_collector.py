"""EpisodeCollector: episodes emitted for a scripted sequence of steps, resets and drops, against a hand-built
expectation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from wam_isaac.data.collector import EpisodeCollector, nonfinite_envs
from wam_isaac.data.specs import KeySpec

SPECS = {"obs/policy": KeySpec((2,)), "actions": KeySpec((1,), "int64"), "dones": KeySpec((), "bool")}


def step(global_step: int, num_envs: int = 3) -> dict[str, torch.Tensor]:
    """Step ``global_step`` of every env: obs = (env, step), action = 10 * env + step."""
    envs = torch.arange(num_envs)
    return {
        "obs/policy": torch.stack([envs.float(), torch.full((num_envs,), float(global_step))], dim=1),
        "actions": (10 * envs + global_step)[:, None],
        "dones": torch.zeros(num_envs, dtype=torch.bool),
    }


def test_scripted_episodes_match_hand_built_expectation():
    collector = EpisodeCollector(3, SPECS, max_episode_length=5)
    collector.begin(
        torch.arange(3), seeds=torch.tensor([10, 11, 12]), dr_params={"mass": torch.tensor([[1.0], [2.0], [3.0]])}
    )
    success = torch.tensor([True, False, True])
    emitted = []
    for g in range(6):
        collector.add_step(step(g))
        if g == 1:
            emitted += collector.finish([0], success)
            collector.begin(
                [0], seeds=torch.tensor([20, 21, 22]), dr_params={"mass": torch.tensor([[7.0], [8.0], [9.0]])}
            )
        if g == 2:
            assert collector.drop(torch.tensor([2])) == 1
        if g == 3:
            emitted += collector.finish(
                torch.tensor([False, True, True]), success, attrs={"timeout": torch.tensor([0, 1, 0])}
            )
        if g == 5:
            emitted += collector.finish(torch.ones(3, dtype=torch.bool), success)
    # (env, steps of the episode, seed, mass): env 2's steps 0-2 were dropped, so its first episode is step 3 only
    expected = [(0, [0, 1], 10, 1.0), (1, [0, 1, 2, 3], 11, 2.0), (2, [3], 12, 3.0),
                (0, [2, 3, 4, 5], 20, 7.0), (1, [4, 5], 11, 2.0), (2, [4, 5], 12, 3.0)]  # fmt: skip
    assert [(e.env_id, e.data["obs/policy"][:, 1].tolist(), e.seed, e.dr["mass"].item()) for e in emitted] == expected
    for episode in emitted:
        steps = np.array(episode.data["obs/policy"][:, 1], dtype=np.int64)
        np.testing.assert_array_equal(episode.data["obs/policy"][:, 0], episode.env_id)
        np.testing.assert_array_equal(episode.data["actions"][:, 0], 10 * episode.env_id + steps)
        assert episode.data["actions"].dtype == np.int64 and episode.data["dones"].dtype == np.bool_
        assert episode.num_samples == len(steps)
        assert episode.success == bool(success[episode.env_id])
    assert [e.attrs for e in emitted[1:3]] == [{"timeout": 1}, {"timeout": 0}]
    assert collector.num_finished == 6 and collector.num_dropped == 1
    np.testing.assert_array_equal(collector.lengths, [0, 0, 0])


def test_drop_discards_partial_episode_and_counts_every_listed_env():
    collector = EpisodeCollector(4, SPECS, max_episode_length=8)
    for g in range(3):
        collector.add_step(step(g, 4))
    assert collector.drop(torch.tensor([False, True, False, True])) == 2
    assert collector.drop([1]) == 1  # no stored step, but its episode still began and did not finish
    collector.add_step(step(3, 4))
    episodes = collector.finish(torch.arange(4), torch.zeros(4, dtype=torch.bool))
    assert [(e.env_id, e.num_samples) for e in episodes] == [(0, 4), (1, 1), (2, 4), (3, 1)]
    assert episodes[1].data["obs/policy"][:, 1].tolist() == [3.0]
    assert collector.num_dropped == 3


def test_finish_of_env_without_steps_emits_nothing_and_unknown_meta_is_marked():
    collector = EpisodeCollector(2, SPECS, max_episode_length=4)
    assert collector.finish([0, 1], torch.ones(2, dtype=torch.bool)) == []
    collector.begin([0], dr_params={"mass": torch.tensor([[5.0], [6.0]])})
    collector.add_step(step(0, 2))
    first, second = collector.finish([0, 1], torch.ones(2, dtype=torch.bool))
    assert (first.seed, first.dr["mass"].item()) == (-1, 5.0)
    assert second.seed == -1 and np.isnan(second.dr["mass"]).all()


def test_episode_longer_than_buffer_and_bad_steps_raise():
    collector = EpisodeCollector(2, SPECS, max_episode_length=2)
    collector.add_step(step(0, 2))
    collector.add_step(step(1, 2))
    with pytest.raises(ValueError, match="max_episode_length=2"):
        collector.add_step(step(2, 2))
    with pytest.raises(ValueError, match="missing \\['dones'\\]"):
        collector.add_step({k: v for k, v in step(0, 2).items() if k != "dones"})
    with pytest.raises(ValueError, match="shape"):
        collector.add_step({**step(0, 2), "actions": torch.zeros(2, 3, dtype=torch.long)})
    with pytest.raises(ValueError, match="env ids"):
        collector.drop([2])


def test_nonfinite_envs_flags_nan_and_inf_rows():
    values = step(0, 4)
    values["obs/policy"][1, 0] = float("nan")
    values["obs/policy"][3, 1] = float("-inf")
    assert nonfinite_envs(values).tolist() == [False, True, False, True]


def test_last_step_nonfinite_matches_nonfinite_envs_of_that_step():
    specs = {**SPECS, "states/q": KeySpec((2, 2), "float64"), "states/empty": KeySpec((0,))}
    collector = EpisodeCollector(4, specs, max_episode_length=3)
    for g in range(5):  # wraps around the 3-slot ring; a NaN at step 3 must not be reported at step 4
        values = {**step(g, 4), "states/q": torch.full((4, 2, 2), float(g), dtype=torch.float64),
                  "states/empty": torch.zeros(4, 0)}  # fmt: skip
        if g == 3:
            values["states/q"][2, 1, 0] = float("inf")
            values["obs/policy"][0, 1] = float("nan")
        collector.add_step(values)
        assert collector.last_step_nonfinite().tolist() == nonfinite_envs(values).tolist()
        assert collector.last_step_nonfinite().tolist() == ([True, False, True, False] if g == 3 else [False] * 4)
        if g == 1:
            collector.finish([0, 1, 2, 3], torch.zeros(4, dtype=torch.bool))
    (episode,) = collector.finish([1], torch.zeros(4, dtype=torch.bool))
    assert (
        episode.data["states/q"][:, 0, 0].tolist() == [2.0, 3.0, 4.0] and episode.data["states/q"].dtype == np.float64
    )
    assert episode.data["states/empty"].shape == (3, 0)


def test_finish_async_carries_final_states_and_exact_metadata_in_one_copy():
    """What the driver hands over at an episode end: the final state rows of the finished envs, metadata of every
    dtype (int64 seeds and indices beyond float32, float32 DR, bool success, host attrs) exact after the packed
    copy, episodes built only when asked."""
    collector = EpisodeCollector(3, SPECS, max_episode_length=5)
    big = 2**40 + 7  # exact in float64, not in float32
    collector.begin(np.arange(3), seeds=big, dr_params={"mass": torch.tensor([[1.1], [2.2], [3.3]])})
    for t in range(2):
        collector.add_step(step(t))
    final = {"obs/policy": torch.tensor([[0.5, 9.0], [1.5, 9.0], [2.5, 9.0]]), "actions": torch.tensor([[7], [8], [9]])}
    index = np.array([4, 5, 6])
    pending = collector.finish_async(
        np.array([2, 0]),
        success=torch.tensor([True, False, False]),
        attrs={"episode_index": index, "counter": torch.tensor([big, 1, big + 2])},
        final=final,
    )
    index[:] = 0  # host attrs were taken at the call
    assert collector.lengths.tolist() == [0, 2, 0] and len(pending) == 2
    first, second = pending.episodes()
    assert (first.env_id, second.env_id) == (0, 2)
    assert first.seed == big and first.success and not second.success
    assert first.attrs == {"counter": big, "episode_index": 4} and second.attrs == {
        "counter": big + 2,
        "episode_index": 6,
    }
    np.testing.assert_array_equal(first.dr["mass"], np.array([1.1], dtype=np.float32))
    assert first.dr["mass"].dtype == np.float32
    np.testing.assert_array_equal(second.final["obs/policy"], [2.5, 9.0])
    np.testing.assert_array_equal(second.final["actions"], [9])
    assert second.final["actions"].dtype == np.int64 and second.final["obs/policy"].shape == (2,)
    np.testing.assert_array_equal(second.data["actions"][:, 0], [20, 21])


def test_finish_rejects_a_final_state_that_is_not_a_step_key():
    collector = EpisodeCollector(3, SPECS, max_episode_length=5)
    collector.add_step(step(0))
    with pytest.raises(ValueError, match=r"final\['states/x'\]"):
        collector.finish([0], torch.zeros(3, dtype=torch.bool), final={"states/x": torch.zeros(3, 2)})
    with pytest.raises(ValueError, match=r"final\['obs/policy'\] has shape \(3, 3\)"):
        collector.finish([0], torch.zeros(3, dtype=torch.bool), final={"obs/policy": torch.zeros(3, 3)})
