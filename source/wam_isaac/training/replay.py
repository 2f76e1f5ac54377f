"""A cross-iteration replay of every env's recent transitions, on the simulator's device, for world-model windows.

PPO's rollouts are short (about 24 steps), a multi-step world-model loss needs longer windows, and rsl-rl's rollout
storage forgets each rollout: :class:`TransitionReplay` keeps the last ``capacity`` transitions of every env in a ring
(one row per env step, all envs written together), and serves windows of consecutive transitions of one env.

A transition ``t`` holds the state ``s_t`` (the ``world_model`` group when the action was chosen), the instruction
``g_t``, the action ``a_t``, the env's raw reward ``r_t`` (not PPO's time-out-bootstrapped one), ``terminated_t``
(``dones & ~time_outs``), ``done_t`` and the next state ``s'_t``: the observation after the step, or, where the
episode ended, the final observation computed before Isaac Lab's reset (``extras["final_obs"]``), never the reset
one. A window of ``k`` transitions never contains an episode end except at its last transition, so its states
``s_t .. s_{t+k-1}, s'_{t+k-1}`` all belong to one episode, and an episode's last step is predicted (its target is
the final state, its termination flag a positive example).
"""

from __future__ import annotations

from typing import Any

import torch

from .sequences import Sequences

FIELDS = ("states", "next_states", "instruction", "actions", "rewards", "terminated", "dones")
"""The per-transition tensors of the ring, each (capacity, num_envs, ...)."""


class TransitionReplay:
    """The last ``capacity`` transitions of ``num_envs`` envs.

    Args:
        num_envs: N.
        capacity: transitions kept per env [steps].
        state_dim, instruction_dim, action_dim: S, I, A.
        device: where the ring lives (the simulator's device).
    """

    def __init__(
        self, num_envs: int, capacity: int, state_dim: int, instruction_dim: int, action_dim: int, device
    ) -> None:
        if capacity < 2:
            raise ValueError(f"replay capacity must be at least 2 steps per env, got {capacity}")
        self.num_envs, self.capacity, self.device = num_envs, capacity, torch.device(device)
        shape = (capacity, num_envs)
        self.states = torch.zeros(*shape, state_dim, device=device)
        """``s_t`` [physical units], (C, N, S)."""
        self.next_states = torch.zeros(*shape, state_dim, device=device)
        """``s'_t``: the state after the step (the final state where the episode ended), (C, N, S)."""
        self.instruction = torch.zeros(*shape, instruction_dim, device=device)
        """``g_t``, (C, N, I)."""
        self.actions = torch.zeros(*shape, action_dim, device=device)
        """``a_t``, (C, N, A)."""
        self.rewards = torch.zeros(*shape, device=device)
        """Raw env reward ``r_t``, (C, N)."""
        self.terminated = torch.zeros(*shape, device=device)
        """1 where the episode terminated at ``t`` (not a time-out), (C, N)."""
        self.dones = torch.zeros(*shape, dtype=torch.bool, device=device)
        """True where the episode ended at ``t`` (terminated or timed out), (C, N)."""
        self.cursor = 0
        """Ring row the next transition goes to."""
        self.size = 0
        """Transitions stored per env (at most ``capacity``)."""

    def add(self, states, instruction, actions, rewards, terminated, dones, next_states) -> None:
        """Append one transition of every env (tensors with leading dim N; rewards, terminated, dones (N,) or
        (N, 1)). Copies into preallocated rows, so it is safe inside ``torch.inference_mode``."""
        row = self.cursor
        self.states[row].copy_(states)
        self.next_states[row].copy_(next_states)
        self.instruction[row].copy_(instruction)
        self.actions[row].copy_(actions)
        self.rewards[row].copy_(rewards.reshape(-1))
        self.terminated[row].copy_(terminated.reshape(-1))
        self.dones[row].copy_(dones.reshape(-1).bool())
        self.cursor = (row + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def rows(self, logical: torch.Tensor) -> torch.Tensor:
        """Ring rows of logical indices (0 = the oldest stored transition)."""
        return (self.cursor - self.size + logical) % self.capacity

    def valid_starts(self, transitions: int) -> torch.Tensor:
        """``valid[i, e]``: a window of ``transitions`` transitions of env ``e`` starting at logical index ``i``
        contains no episode end before its last transition, (size - transitions + 1, N) bool (zero rows if fewer
        are stored)."""
        count = self.size - transitions + 1
        if count <= 0:
            return torch.zeros(0, self.num_envs, dtype=torch.bool, device=self.device)
        dones = self.dones[self.rows(torch.arange(self.size, device=self.device))].long()
        ends = torch.cat((torch.zeros_like(dones[:1]), dones.cumsum(0)))  # ends[i] = episode ends before i
        starts = torch.arange(count, device=self.device)
        inside = ends[starts + transitions - 1] - ends[starts]  # ends among transitions i .. i + k - 2
        return inside == 0

    def gather(self, starts: torch.Tensor, envs: torch.Tensor, transitions: int) -> Sequences:
        """Windows of ``transitions`` transitions at logical ``starts`` of ``envs`` (B,) as :class:`Sequences` of
        ``transitions + 1`` states: ``s_t .. s_{t+k-1}`` then ``s'_{t+k-1}``. The extra last row's instruction
        repeats the one before; its action, reward and termination are 0 (no loss reads them); it is flagged
        ``is_final`` where the last transition ended its episode (the row is then the final state ``s_T``).
        ``action_before`` is the action of the transition before each start, zeros where an episode ended there (the
        window starts an episode) or the start is the oldest stored transition (nothing known before it)."""
        rows = self.rows(starts[:, None] + torch.arange(transitions, device=self.device))
        env = envs[:, None]
        last = (rows[:, -1], envs)
        states = torch.cat((self.states[rows, env], self.next_states[last][:, None]), dim=1)
        instruction = self.instruction[rows, env]
        zero = torch.zeros_like(self.rewards[rows[:, :1], env])
        earlier = self.rows((starts - 1).clamp(min=0))
        opens = (starts == 0) | self.dones[earlier, envs]
        before = torch.where(opens[:, None], 0.0, self.actions[earlier, envs])
        return Sequences(
            states=states,
            instruction=torch.cat((instruction, instruction[:, -1:]), dim=1),
            actions=torch.cat((self.actions[rows, env], torch.zeros_like(self.actions[rows[:, :1], env])), dim=1),
            rewards=torch.cat((self.rewards[rows, env], zero), dim=1),
            terminated=torch.cat((self.terminated[rows, env], zero), dim=1),
            contacts=states.new_zeros(*states.shape[:2], 0),
            is_final=torch.cat((torch.zeros_like(self.rewards[rows, env]), self.dones[last][:, None].float()), dim=1),
            action_before=before,
        )

    def sample(
        self, count: int, transitions: int, env_mask: torch.Tensor, generator: torch.Generator | None = None
    ) -> Sequences | None:
        """``count`` windows drawn uniformly (with replacement) among the valid windows of the envs in ``env_mask``
        (N,) bool; ``None`` if there is none."""
        valid = self.valid_starts(transitions) & env_mask[None]
        weights = valid.flatten().float()
        if weights.numel() == 0 or not bool(weights.any()):
            return None
        index = torch.multinomial(weights, count, replacement=True, generator=generator)
        return self.gather(index // self.num_envs, index % self.num_envs, transitions)

    def latest(self, count: int, transitions: int, env_mask: torch.Tensor) -> Sequences | None:
        """The (at most) ``count`` most recent valid windows of the envs in ``env_mask``; ``None`` if none."""
        valid = self.valid_starts(transitions) & env_mask[None]
        starts, envs = valid.nonzero(as_tuple=True)
        if starts.numel() == 0:
            return None
        order = torch.argsort(starts, descending=True, stable=True)[:count]
        return self.gather(starts[order], envs[order], transitions)

    def state_dict(self) -> dict[str, Any]:
        """Every tensor (in logical order, oldest first) and the counters."""
        logical = self.rows(torch.arange(self.size, device=self.device))
        return {"capacity": self.capacity, "size": self.size, **{name: getattr(self, name)[logical] for name in FIELDS}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (into a replay of the same capacity and shapes)."""
        if int(state["capacity"]) != self.capacity:
            raise ValueError(f"replay of capacity {state['capacity']} cannot load into one of capacity {self.capacity}")
        size = int(state["size"])
        for name in FIELDS:
            getattr(self, name)[:size].copy_(state[name])
        self.size, self.cursor = size, size % self.capacity
