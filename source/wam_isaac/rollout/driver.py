"""Run a task's N envs under a behaviour policy, label every step, and stream the episodes to a dataset.

One sample ``t`` of an episode holds:

- ``obs/<group>``: the observation groups at ``t`` (``policy``, ``critic``, ...); a group whose terms are not
  concatenated (the tasks' ``world_model`` and ``instruction`` groups) is stored term by term, ``obs/<group>/<term>``;
- ``actions``, ``rewards``, ``dones``: the action taken at ``t``, its reward and whether the episode ended there;
- ``expert_actions`` (with an ``expert``, e.g. ``wam generate --expert_labels``): the task's scripted expert's
  noise-free action on the state of ``t`` (the state the behaviour policy acted on), DAgger's action label;
- ``states/<asset>/{root_pose, root_vel, joint_pos, joint_vel}``: the simulator state at ``t`` (root pose relative
  to the env origin, xyzw; velocities in the world frame);
- ``labels/...``: the :class:`~wam_isaac.labels.labeler.Labeler` outputs after the step, so ``labels/delta_k/...``
  at ``t`` is ``s_{t+1} - s_{t+1-k}`` (the world model's target for ``t`` when ``k = 1``).

Envs that reset inside a step (Isaac Lab resets them before returning) end their episode there: their last step is
labeled, and their final state s_T (:attr:`Episode.final <wam_isaac.data.Episode.final>`: ``states/...`` and every
observation group) recorded, inside ``env.step`` before the reset (:mod:`wam_isaac.rollout.terminal`), so every
label of an episode describes that episode. Episodes still running when the step budget is spent (or ``stop``
says so) are written too (attr ``budget_end``; their final state is the state after the loop), so a run writes
``num_envs * steps`` transitions less the dropped ones. An env whose state stops being finite (a physics blow-up)
is reset and its partial episode dropped and counted.

Host synchronizations: one per step in steady state (the finished and blown-up envs' mask, copied to the host);
episode bookkeeping (lengths, seeds, episode indices) lives on the host, and a step's finished episodes reach the
host through non-blocking copies that the next step's synchronization completes, when they are handed to the
writer.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..data import DatasetWriter, EpisodeCollector, key_specs_from_example
from ..envs.dr import read_dr_params
from ..labels.labeler import Labeler, LabelerCfg
from .state import STATE_DESCRIPTIONS, episode_success, flatten_observations, record_state
from .terminal import TerminalRecorder

__all__ = ["STATE_DESCRIPTIONS", "RolloutDriver", "RolloutStats", "episode_success", "flatten_observations"]
__all__ += ["record_state"]

if TYPE_CHECKING:
    from isaaclab.envs import ManagerBasedRLEnv

    from .policies import Policy

LABEL_UNITS = {
    "valid": "1",
    "flag": "1",
    "flags/": "1",
    "root_pose": "m|1 (xyzw)",
    "root_vel": "m/s|rad/s",
    "root_pos": "m",
    "rotvec": "rad",
    "root_lin_vel": "m/s",
    "root_ang_vel": "rad/s",
    "joint_pos": "rad|m",
    "joint_vel": "rad/s|m/s",
    "energy": "J",
    "force": "N",
    "penetration": "m",
    "_pos_in_": "m",
    "distance": "m",
}
"""Units recorded in the manifest, by the first matching fragment of a key."""


@dataclass
class RolloutStats:
    """What a rollout produced."""

    transitions: int = 0
    """Transitions written (samples of written episodes)."""
    episodes: int = 0
    """Episodes written."""
    successes: int = 0
    """Written episodes that succeeded."""
    dropped_episodes: int = 0
    """Partial episodes discarded after a non-finite state."""
    dropped_transitions: int = 0
    """Samples of the dropped episodes."""
    seconds: float = 0.0
    """Wall time of the run: the stepping loop plus :attr:`flush_seconds` [s]."""
    flush_seconds: float = 0.0
    """Wall time of the final flush: handing over the episodes still running at the end and waiting for the writer to
    write them and close the dataset [s]; a fixed cost per run (about one episode per env)."""


def _unit(key: str) -> str:
    return next((unit for fragment, unit in LABEL_UNITS.items() if fragment in key), "")


class RolloutDriver:
    """Steps ``env`` under ``policy`` for ``steps`` steps, labeling and writing every transition."""

    def __init__(
        self,
        env: ManagerBasedRLEnv,
        policy: Policy,
        writer_factory: Callable[[dict], DatasetWriter],
        labeler_cfg: LabelerCfg | None = None,
        seed: int = 0,
        first_episode_index: int | torch.Tensor = 0,
        expert: Policy | None = None,
    ):
        """
        Args:
            env: the task's env (Isaac Lab resets finished envs inside ``env.step``).
            policy: the behaviour policy.
            writer_factory: opens the dataset writer (a context manager) from the key specs.
            labeler_cfg: which labels to compute.
            seed: the run's seed, passed to ``env.reset`` and recorded with every episode.
            first_episode_index: the ``episode_index`` attribute of each env's first episode, one for all or a
                tensor of shape (num_envs,) (a resumed run continues where the previous one stopped).
            expert: if given, its action on every step's observations is recorded as ``expert_actions`` (a label:
                the behaviour policy's action is the one executed).
        """
        self.env = env
        self.policy = policy
        self.expert = expert
        self.labeler = Labeler(env, labeler_cfg)
        self.seed = seed
        self._writer_factory = writer_factory
        self.terminal = TerminalRecorder(env, self.labeler)
        self._episode_index = np.zeros(env.num_envs, dtype=np.int64)
        """Index of each env's current episode among that env's episodes, on the host."""
        index = first_episode_index.cpu().numpy() if torch.is_tensor(first_episode_index) else first_episode_index
        self._episode_index += np.asarray(index, dtype=np.int64)
        self._initial_dr: dict[str, torch.Tensor] = {}

    def run(
        self,
        steps: int,
        progress: Callable[[int, RolloutStats], None] | None = None,
        on_step: Callable[[int], None] | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> RolloutStats:
        """Run ``steps`` env steps and write every transition.

        Args:
            steps: env steps (each advances all ``num_envs`` envs).
            progress: called as ``progress(steps_done, stats)`` after every step.
            on_step: called as ``on_step(step)`` right after each ``env.step`` (tests inject faults with it).
            stop: called once before every step (a host-side flag, e.g. set by a SIGTERM handler); when it returns
                true the run ends as if the step budget were spent: the running episodes are written with
                ``budget_end`` and the writer is closed.
        """
        env = self.env
        obs, _ = env.reset(seed=self.seed)
        self.labeler.reset()
        self._initial_dr = read_dr_params(env)
        terminal = self.terminal.install()
        stats = RolloutStats()
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            stack.callback(terminal.uninstall)
            collector = writer = pending = None
            for step in range(steps):
                if stop is not None and stop():
                    break
                data = flatten_observations(obs)
                data.update(record_state(env))
                if self.expert is not None:  # before the behaviour policy: the expert reads the same state
                    data["expert_actions"] = self.expert(obs)
                actions = self.policy(obs)
                terminal.arm()
                obs, rewards, terminated, truncated, _ = env.step(actions)
                terminal.disarm()
                if on_step is not None:
                    on_step(step)
                # the finished envs' labels were taken before their reset; the others' are taken now
                labels = self.labeler.compute(new_step=not terminal.fired)
                if terminal.fired:
                    labels = _rows_where(terminal.finished, terminal.labels, labels)
                done = terminated | truncated
                data.update(actions=actions, rewards=rewards, dones=done)
                data.update({f"labels/{key}": value for key, value in labels.items()})
                if collector is None:
                    collector, writer = self._open(data, stack)
                collector.add_step(data)
                bad = collector.last_step_nonfinite()
                # the one host synchronization of the step; it also completes the previous step's episode copies
                ended = torch.stack([done & ~bad, bad]).cpu().numpy()
                finished, dropped = np.flatnonzero(ended[0]), np.flatnonzero(ended[1])
                if pending is not None:
                    self._write(writer, stats, pending)
                    pending = None
                if finished.size:
                    if not terminal.fired:
                        raise RuntimeError(
                            f"envs {finished.tolist()[:8]} ended inside env.step without a call to "
                            "recorder_manager.record_pre_reset: their last step cannot be labeled before the reset "
                            "(the rollout driver needs a ManagerBasedRLEnv)"
                        )
                    success = episode_success(env, terminated, truncated)
                    pending = self._finish(collector, finished, success, terminal.final)
                if dropped.size:
                    obs = self._drop(collector, writer, stats, dropped)
                if finished.size or dropped.size:
                    restarted = np.union1d(finished, dropped)
                    collector.begin(restarted, seeds=self.seed, dr_params=read_dr_params(env))
                if progress is not None:
                    progress(step + 1, stats)
            flush_start = time.perf_counter()
            if pending is not None:
                self._write(writer, stats, pending)
            if collector is not None:
                running = np.flatnonzero(collector.lengths > 0)
                final = flatten_observations(obs)
                final.update(record_state(env))
                no_success = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
                self._write(writer, stats, self._finish(collector, running, no_success, final, budget_end=True))
        end = time.perf_counter()
        stats.seconds, stats.flush_seconds = end - start, end - flush_start
        return stats

    def _descriptions(self, example: dict[str, torch.Tensor]) -> dict[str, str]:
        """What the states, actions and labels of a step mean (recorded in the manifest); observations get none here
        (what their terms are is the task's observation config)."""
        described = {f"labels/{key}": text for key, text in self.labeler.descriptions().items()}
        described.update(actions="the action sent to env.step at this step", rewards="the reward of this step")
        described["expert_actions"] = (
            "the scripted expert's noise-free action on this step's state (DAgger label; 'actions' was executed)"
        )
        described["dones"] = "1 if the episode ended at this step (termination or time-out)"
        for key in example:
            if key.startswith("states/"):
                asset, field = key.split("/")[1:]
                described[key] = STATE_DESCRIPTIONS[field].format(asset=asset, joints=self._joint_names(asset))
        return described

    def _joint_names(self, asset: str) -> str:
        return ", ".join(self.env.scene[asset].joint_names) if asset in self.env.scene.articulations else ""

    def _open(self, example: dict[str, torch.Tensor], stack: contextlib.ExitStack):
        """Collector and writer sized from the first step's data; the episodes so far get their DR parameters."""
        env = self.env
        specs = key_specs_from_example(
            example, units={key: _unit(key) for key in example}, descriptions=self._descriptions(example)
        )
        collector = EpisodeCollector(env.num_envs, specs, int(env.max_episode_length) + 1, device=env.device)
        collector.begin(np.arange(env.num_envs), seeds=self.seed, dr_params=self._initial_dr)
        writer = stack.enter_context(self._writer_factory(specs))
        return collector, writer

    def _finish(self, collector, ids: np.ndarray, success, final, budget_end: bool = False):
        """Hand the episodes of envs ``ids`` (host indices) to the host without waiting (see
        :meth:`EpisodeCollector.finish_async`)."""
        attrs = {
            "episode_index": self._episode_index,
            "budget_end": np.full(self.env.num_envs, int(budget_end), dtype=np.int64),
        }
        pending = collector.finish_async(ids, success=success, attrs=attrs, final=final)
        self._episode_index[ids] += 1
        return pending

    @staticmethod
    def _write(writer, stats: RolloutStats, pending) -> None:
        episodes = pending.episodes()
        writer.write_many(episodes)
        stats.episodes += len(episodes)
        stats.transitions += sum(episode.num_samples for episode in episodes)
        stats.successes += sum(bool(episode.success) for episode in episodes)

    def _drop(self, collector, writer, stats: RolloutStats, ids: np.ndarray) -> dict[str, torch.Tensor]:
        """Discard the partial episodes of envs ``ids`` (host indices) and reset them; returns the fresh
        observations."""
        stats.dropped_transitions += int(collector.lengths[ids].sum())
        dropped = collector.drop(ids)
        stats.dropped_episodes += dropped
        writer.add_dropped(dropped)
        device_ids = torch.as_tensor(ids, device=self.env.device)
        obs, _ = self.env.reset(env_ids=device_ids)
        self.labeler.reset(device_ids)
        return obs


def _rows_where(rows: torch.Tensor, chosen: dict[str, torch.Tensor], other: dict[str, torch.Tensor]):
    """``chosen``'s values in the envs of the mask ``rows`` (num_envs,), ``other``'s elsewhere, key by key."""
    return {
        key: torch.where(rows.view(-1, *[1] * (value.ndim - 1)), chosen[key], value) for key, value in other.items()
    }
