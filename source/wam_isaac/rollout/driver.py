"""Run a task's N envs under a behaviour policy, label every step, and stream the episodes to a dataset.

One sample ``t`` of an episode holds:

- ``obs/<group>``: the observation groups at ``t`` (``policy``, ``critic``, ...); a group whose terms are not
  concatenated (the tasks' ``world_model`` and ``instruction`` groups) is stored term by term, ``obs/<group>/<term>``;
- ``actions``, ``rewards``, ``dones``: the action taken at ``t``, its reward and whether the episode ended there;
- ``states/<asset>/{root_pose, root_vel, joint_pos, joint_vel}``: the simulator state at ``t`` (root pose relative
  to the env origin, xyzw; velocities in the world frame);
- ``labels/...``: the :class:`~wam_isaac.labels.labeler.Labeler` outputs after the step, so ``labels/delta_k/...``
  at ``t`` is ``s_{t+1} - s_{t+1-k}`` (the world model's target for ``t`` when ``k = 1``).

Envs that reset inside a step (Isaac Lab resets them before returning) end their episode there; episodes still
running when the step budget is spent are written too (attr ``budget_end``), so a run writes ``num_envs * steps``
transitions less the dropped ones. An env whose state stops being finite (a physics blow-up) is reset and its
partial episode dropped and counted.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..data import DatasetWriter, EpisodeCollector, key_specs_from_example
from ..envs.dr import read_dr_params
from ..labels.labeler import Labeler, LabelerCfg

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


STATE_DESCRIPTIONS = {
    "root_pose": "{asset}'s root link pose before the step: position relative to the env origin, quaternion xyzw",
    "root_vel": "{asset}'s center-of-mass linear and angular velocity before the step, world frame",
    "joint_pos": "{asset}'s joint positions before the step; joints: {joints}",
    "joint_vel": "{asset}'s joint velocities before the step; joints: {joints}",
}
"""Meaning of the ``states/<asset>/<field>`` keys :func:`record_state` records."""


def record_state(env: ManagerBasedRLEnv) -> dict[str, torch.Tensor]:
    """The simulator state of every asset, keyed ``states/<asset>/...``, each (num_envs, ...)."""
    origins = env.scene.env_origins
    state = {}
    for name, asset in {**env.scene.articulations, **env.scene.rigid_objects}.items():
        data = asset.data
        pose = torch.cat([data.root_link_pos_w.torch - origins, data.root_link_quat_w.torch], dim=-1)
        state[f"states/{name}/root_pose"] = pose
        state[f"states/{name}/root_vel"] = torch.cat([data.root_com_lin_vel_w.torch, data.root_com_ang_vel_w.torch], -1)
        if name in env.scene.articulations:
            state[f"states/{name}/joint_pos"] = data.joint_pos.torch.clone()
            state[f"states/{name}/joint_vel"] = data.joint_vel.torch.clone()
    return state


def episode_success(env: ManagerBasedRLEnv, terminated: torch.Tensor, truncated: torch.Tensor) -> torch.Tensor:
    """Success of the episodes ending now: the task's ``success`` termination when it has one, else survival to
    the time limit (balancing and locomotion tasks)."""
    manager = env.termination_manager
    if "success" in manager.active_terms:
        return manager.get_term("success").bool()
    return truncated & ~terminated


def flatten_observations(obs) -> dict[str, torch.Tensor]:
    """Copies of an env's observations keyed ``obs/<group>`` (concatenated groups) or ``obs/<group>/<term>``."""
    flat = {}
    for group, value in obs.items():
        if isinstance(value, torch.Tensor):
            flat[f"obs/{group}"] = value.clone()
        else:
            flat.update({f"obs/{group}/{term}": tensor.clone() for term, tensor in value.items()})
    return flat


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
        """
        self.env = env
        self.policy = policy
        self.labeler = Labeler(env, labeler_cfg)
        self.seed = seed
        self._writer_factory = writer_factory
        self._episode_index = torch.zeros(env.num_envs, dtype=torch.long, device=env.device)
        self._episode_index += torch.as_tensor(first_episode_index, dtype=torch.long).to(env.device)
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
        stats = RolloutStats()
        start = time.perf_counter()
        with contextlib.ExitStack() as stack:
            collector = writer = None
            for step in range(steps):
                if stop is not None and stop():
                    break
                data = flatten_observations(obs)
                data.update(record_state(env))
                actions = self.policy(obs)
                obs, rewards, terminated, truncated, _ = env.step(actions)
                if on_step is not None:
                    on_step(step)
                labels = self.labeler.compute()
                done = terminated | truncated
                data.update(actions=actions, rewards=rewards, dones=done)
                data.update({f"labels/{key}": value for key, value in labels.items()})
                if collector is None:
                    collector, writer = self._open(data, stack)
                collector.add_step(data)
                bad = collector.last_step_nonfinite()
                finished = done & ~bad
                any_finished, any_bad = bool(finished.any()), bool(bad.any())
                if any_finished:
                    self._finish(collector, writer, stats, finished, episode_success(env, terminated, truncated))
                if any_bad:
                    obs = self._drop(collector, writer, stats, bad)
                if any_finished or any_bad:
                    collector.begin(finished | bad, seeds=self.seed, dr_params=read_dr_params(env))
                if progress is not None:
                    progress(step + 1, stats)
            flush_start = time.perf_counter()
            if collector is not None:
                running = torch.as_tensor(collector.lengths > 0)
                no_success = torch.zeros(env.num_envs, dtype=torch.bool, device=env.device)
                self._finish(collector, writer, stats, running, no_success, budget_end=True)
        end = time.perf_counter()
        stats.seconds, stats.flush_seconds = end - start, end - flush_start
        return stats

    def _descriptions(self, example: dict[str, torch.Tensor]) -> dict[str, str]:
        """What the states, actions and labels of a step mean (recorded in the manifest); observations get none here
        (what their terms are is the task's observation config)."""
        described = {f"labels/{key}": text for key, text in self.labeler.descriptions().items()}
        described.update(actions="the action sent to env.step at this step", rewards="the reward of this step")
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
        collector.begin(torch.ones(env.num_envs, dtype=torch.bool), seeds=self.seed, dr_params=self._initial_dr)
        writer = stack.enter_context(self._writer_factory(specs))
        return collector, writer

    def _finish(self, collector, writer, stats: RolloutStats, envs, success, budget_end: bool = False) -> None:
        ids = envs.nonzero()[:, 0]
        attrs = {
            "episode_index": self._episode_index,
            "budget_end": torch.full((self.env.num_envs,), int(budget_end), device=self.env.device),
        }
        episodes = collector.finish(ids, success=success, attrs=attrs)
        self._episode_index[ids] += 1
        writer.write_many(episodes)
        stats.episodes += len(episodes)
        stats.transitions += sum(episode.num_samples for episode in episodes)
        stats.successes += sum(bool(episode.success) for episode in episodes)

    def _drop(self, collector, writer, stats: RolloutStats, bad: torch.Tensor) -> dict[str, torch.Tensor]:
        """Discard the partial episodes of the ``bad`` envs and reset them; returns the fresh observations."""
        ids = bad.nonzero()[:, 0]
        stats.dropped_transitions += int(collector.lengths[ids.cpu().numpy()].sum())
        dropped = collector.drop(ids)
        stats.dropped_episodes += dropped
        writer.add_dropped(dropped)
        obs, _ = self.env.reset(env_ids=ids)
        self.labeler.reset(ids)
        return obs
