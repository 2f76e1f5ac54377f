"""The world-model replay of WamPPO: windows never span a reset, and an episode's last step leads to its final
observation (``extras["final_obs"]``), not to the reset one."""

from __future__ import annotations

import torch
from wam_ppo_synthetic import SyntheticPushEnv, build_algorithm, collect

from wam_isaac.training.replay import TransitionReplay


def hand_replay() -> TransitionReplay:
    """2 envs, capacity 5, 7 transitions written (the first 2 overwritten). State = 10 * env + global step;
    env 0 ends episodes at steps 3 and 5, env 1 at step 4; the next state of an end is 100 + its state."""
    replay = TransitionReplay(2, 5, state_dim=1, instruction_dim=0, action_dim=1, device="cpu")
    ends = {(0, 3), (0, 5), (1, 4)}
    for step in range(7):
        states = torch.tensor([[float(step)], [10.0 + step]])
        done = torch.tensor([(env, step) in ends for env in range(2)])
        next_states = torch.where(done[:, None], 100.0 + states, states + 1.0)
        replay.add(states, states[:, :0], states, torch.zeros(2), done.float(), done, next_states)
    return replay


def test_valid_window_starts_by_hand():
    replay = hand_replay()  # stored steps 2..6: env 0 ends at 3 and 5, env 1 at 4
    valid = replay.valid_starts(3)  # windows of 3 transitions: starts at logical 0..2 = steps 2..4
    # env 0: [2,3,4] has the end 3 inside -> no; [3,4,5] end 3 first -> no; [4,5,6] end 5 inside -> no
    # env 1: [12,13,14] ends only at its last (step 4) -> yes; [13,14,15] end 4 inside -> no; [14,15,16] -> no
    assert valid.tolist() == [[False, True], [False, False], [False, False]]
    # windows of 2 from steps 2..5: env 0 [2,3] T (ends last), [3,4] F, [4,5] T, [5,6] F; env 1 T, T, F, T
    assert replay.valid_starts(2).tolist() == [[True, True], [False, True], [True, False], [False, True]]


def test_gathered_window_ends_on_the_final_state_after_wraparound():
    replay = hand_replay()
    window = replay.gather(torch.tensor([0, 2]), torch.tensor([1, 0]), 3)
    # env 1 from step 2: states 12, 13, 14 then the final state of the episode that ended at 4: 114
    assert window.states[0, :, 0].tolist() == [12.0, 13.0, 14.0, 114.0]
    assert window.terminated[0].tolist() == [0.0, 0.0, 1.0, 0.0]
    assert window.is_final[0].tolist() == [0.0, 0.0, 0.0, 1.0]  # the row after an episode's end is its final state
    # env 0 from step 4: 4, 5 (end) ... invalid as a window, but gather reads rows as asked: 4, 5, 6, next of 6
    assert window.states[1, :, 0].tolist() == [4.0, 5.0, 6.0, 7.0]
    assert window.is_final[1].tolist() == [0.0, 0.0, 0.0, 0.0]


def test_replay_state_dict_round_trip():
    replay = hand_replay()
    other = TransitionReplay(2, 5, state_dim=1, instruction_dim=0, action_dim=1, device="cpu")
    other.load_state_dict(replay.state_dict())
    for name, value in replay.state_dict().items():
        assert torch.equal(torch.as_tensor(value), torch.as_tensor(other.state_dict()[name])), name
    assert torch.equal(replay.valid_starts(2), other.valid_starts(2))


class RecordingEnv(SyntheticPushEnv):
    """Remembers, per step, the final observations and the post-reset observations it returned."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log: list[dict] = []

    def step(self, actions):
        obs, rewards, dones, extras = super().step(actions)
        self.log.append(
            {
                "dones": dones.clone(),
                "time_outs": extras["time_outs"].clone(),
                "rewards": rewards.clone(),
                "reset_pos": obs["world_model"]["pos"].clone(),
                "final_pos": extras["final_obs"]["world_model"]["pos"].clone() if "final_obs" in extras else None,
            }
        )
        return obs, rewards, dones, extras


def test_terminal_next_state_is_the_final_observation_and_targets_are_raw():
    torch.manual_seed(0)
    env = RecordingEnv(num_envs=16, episode_length=6, seed=3)
    alg = build_algorithm(env, replay_capacity=24)
    assert env.cfg.compute_final_obs, "WamPPO turns the env's final observations on"
    for _ in range(3):
        collect(alg, env)
        alg.update()
    replay = alg.replay
    assert replay.size == 24
    rows = replay.rows(torch.arange(24))
    dones = torch.stack([entry["dones"] for entry in env.log]).bool()
    time_outs = torch.stack([entry["time_outs"] for entry in env.log])
    terminated = dones & ~time_outs
    assert terminated.any() and time_outs.any(), "the data must hold terminations and time-outs"
    assert torch.equal(replay.dones[rows], dones)
    assert torch.equal(replay.terminated[rows], terminated.float())
    # raw env rewards: PPO's storage adds gamma * V to time-out steps, the replay must not
    assert torch.equal(replay.rewards[rows], torch.stack([entry["rewards"] for entry in env.log]))
    next_pos = replay.next_states[rows][..., :2]
    for step, entry in enumerate(env.log):
        done = entry["dones"].bool()
        assert torch.equal(next_pos[step][~done], entry["reset_pos"][~done])
        if done.any():
            assert torch.equal(next_pos[step][done], entry["final_pos"][done]), f"step {step}: not the final obs"
            assert not torch.allclose(next_pos[step][done], entry["reset_pos"][done]), f"step {step}: the reset obs"


def test_sampled_windows_never_span_a_reset():
    torch.manual_seed(0)
    env = SyntheticPushEnv(num_envs=16, episode_length=10, seed=4)
    alg = build_algorithm(env, replay_capacity=24)
    for _ in range(3):
        collect(alg, env)
        alg.update()
    window = alg.replay.sample(2048, 5, torch.ones(16, dtype=torch.bool))
    # within an episode pos_{t+1} = pos_t + 0.1 clip(a_t), for every step of the window including the last one
    # (whose next state is the final state where the episode ended); a reset in between would break it
    step = window.states[:, 1:, :2] - window.states[:, :-1, :2]
    torch.testing.assert_close(step, 0.1 * window.actions[:, :-1].clamp(-1, 1), atol=1e-5, rtol=0)
    assert window.terminated[:, :-2].sum() == 0, "a termination can only be a window's last transition"
    replay = alg.replay
    ends = replay.dones[replay.rows(torch.arange(4, replay.size))]  # the last transitions of windows of 5
    assert (replay.valid_starts(5) & ends).any(), "windows may end on an episode's last step (it is predicted)"
