"""ObjectRecording.steps_since_reset: the step count restarts at the first state of each episode (hand-computed)."""

from __future__ import annotations

import torch

from wam_isaac_tasks.contact_probe import ObjectRecording


def _recording(continues: list[list[bool]]) -> ObjectRecording:
    n, t = len(continues), len(continues[0]) + 1
    zeros = torch.zeros(n, t, 3)
    return ObjectRecording(
        pos=zeros,
        quat=torch.zeros(n, t, 4),
        lin_vel=zeros,
        ang_vel=zeros,
        continues=torch.tensor(continues),
        episodes=0,
        successes=0,
    )


def test_steps_since_reset_restart_at_each_episode_boundary():
    # env 0: an episode ends after state 2 (state 3 is the next episode's first), again after state 4 (its last
    # step is the recording's last pair); env 1: one episode throughout
    recording = _recording([[True, True, False, True, False], [True, True, True, True, True]])
    since = recording.steps_since_reset()
    assert since.tolist() == [[0, 1, 2, 0, 1, 0], [0, 1, 2, 3, 4, 5]]
    assert since.dtype == torch.long and since.shape == (2, 6)


def test_tracked_position_defaults_to_none():
    assert _recording([[True]]).tracked_pos is None
