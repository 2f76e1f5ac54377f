"""Transfer checks: an exported policy, run by the deploy runtime (onnxruntime, numpy), in control of the task's
Isaac Lab env under conditions it was not trained on, with the surprise monitor beside it when the export has one.

Conditions (each reported with what it changed):

- ``training``: the registered task, its domain randomization as trained;
- ``wider_dr``: every randomization range of the task's events and of its actuation randomization (strength) widened
  by :data:`WIDEN` about its center: geometrically for positive ranges (scales, frictions: ``[c / w^k, c * w^k]``
  for ``[c / w, c * w]``), linearly otherwise (offsets, angles);
- ``obs_delay_noise``: the runtime reads every measured term :data:`DELAY_STEPS` control steps late and with uniform
  noise of :data:`NOISE_FACTOR` times the amplitude the term was trained with (terms trained without noise: none);
  the monitor reads the same delayed measurements;
- ``solver``: the physics solver's substeps per physics step halved (doubled when 1): the contact and joint dynamics
  the policy meets are integrated differently.

Per condition: episodes, success rate (the task's ``success`` termination, else survival to the time limit), mean
return, mean episode length, and the monitor's alarm rate (fraction of judged env-steps with the alarm on; of these,
the stall alarm's), the share of episodes with an alarm at one step at least (of all, of the successful ones, of the
failed ones), and the mean jump statistic.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import torch

CONDITIONS = ("training", "wider_dr", "obs_delay_noise", "solver")
WIDEN = 2.0
"""Factor by which ``wider_dr`` widens every randomization range (in log space for positive ranges)."""
DELAY_STEPS = 2
"""Observation delay of ``obs_delay_noise`` [control steps]."""
NOISE_FACTOR = 2.0
"""Observation noise of ``obs_delay_noise``, in multiples of the training noise amplitude."""
RANGE_SUFFIXES = ("_range", "_distribution_params")


def widen_range(low: float, high: float, factor: float = WIDEN) -> tuple[float, float]:
    """``[low, high]`` widened ``factor`` times about its center, geometrically when both ends are positive."""
    if low > 0 and high > 0:
        center, half = math.sqrt(low * high), 0.5 * math.log(high / low)
        return center * math.exp(-factor * half), center * math.exp(factor * half)
    center, half = 0.5 * (low + high), 0.5 * (high - low)
    return center - factor * half, center + factor * half


def _widen_params(value, key: str = ""):
    if isinstance(value, dict):
        return {k: _widen_params(v, k if k.endswith(RANGE_SUFFIXES) or not key else key) for k, v in value.items()}
    is_pair = isinstance(value, tuple | list) and len(value) == 2 and all(isinstance(v, int | float) for v in value)
    if is_pair and key.endswith(RANGE_SUFFIXES) and not isinstance(value[0], bool):
        return widen_range(float(value[0]), float(value[1]))
    return value


def widen_randomization(env_cfg) -> dict:
    """Widen every event range and the actuation strength range of ``env_cfg`` in place; returns what changed."""
    changed = {}
    for name in env_cfg.events.__dataclass_fields__:
        term = getattr(env_cfg.events, name)
        if term is None or not hasattr(term, "params"):
            continue
        params = {k: _widen_params(v, k) for k, v in term.params.items()}
        diff = {
            k: [list(term.params[k]) if isinstance(term.params[k], tuple) else term.params[k], params[k]]
            for k in params
            if params[k] != term.params[k]
        }
        if diff:
            changed[f"events.{name}"] = {k: {"trained": old, "evaluated": new} for k, (old, new) in diff.items()}
            term.params = params
    for name in env_cfg.actions.__dataclass_fields__:
        term = getattr(env_cfg.actions, name)
        if hasattr(term, "strength_scale"):
            old = tuple(term.strength_scale)
            term.strength_scale = widen_range(*old)
            changed[f"actions.{name}.strength_scale"] = {"trained": list(old), "evaluated": list(term.strength_scale)}
    return changed


def change_solver(env_cfg) -> dict:
    """Halve (or double, from 1) the physics substeps of ``env_cfg`` in place; returns what changed."""
    physics = env_cfg.sim.physics
    targets = [physics] if hasattr(physics, "num_substeps") else []
    targets += [getattr(physics, name) for name in ("newton_mjwarp", "default") if hasattr(physics, name)]
    targets = [t for t in targets if hasattr(t, "num_substeps")]
    if not targets:
        raise ValueError(f"the task's physics config {type(physics).__name__} has no solver substeps to change")
    old = int(targets[0].num_substeps)
    new = old // 2 if old > 1 else 2
    for target in {id(t): t for t in targets}.values():
        target.num_substeps = new
    return {"sim.physics.num_substeps": {"trained": old, "evaluated": new}}


@dataclass
class ConditionResult:
    """What one condition measured."""

    condition: str
    changes: dict
    success: list[bool] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)
    alarms: int = 0
    stall_alarms: int = 0
    judged: int = 0
    statistic_sum: float = 0.0
    alarmed: list[bool] = field(default_factory=list)
    """Per counted episode: the monitor's alarm was on at one of its steps at least."""

    def _alarmed_share(self, succeeded: bool | None = None) -> float | None:
        """The share of the counted episodes (all, or those that succeeded / failed) with an alarm: on successes the
        alarms are false at the episode level; on failures they flag the episode's trouble."""
        if not self.judged:
            return None
        chosen = [a for a, s in zip(self.alarmed, self.success, strict=True) if succeeded is None or s == succeeded]
        return sum(chosen) / len(chosen) if chosen else None

    def to_dict(self) -> dict:
        n = len(self.success)
        return {
            "condition": self.condition,
            "changes": self.changes,
            "episodes": n,
            "success_rate": sum(self.success) / n if n else None,
            "mean_return": float(np.mean(self.returns)) if n else None,
            "mean_episode_length": float(np.mean(self.lengths)) if n else None,
            "alarm_rate": self.alarms / self.judged if self.judged else None,
            "stall_alarm_rate": self.stall_alarms / self.judged if self.judged else None,
            "episodes_alarmed": self._alarmed_share(),
            "successes_alarmed": self._alarmed_share(True),
            "failures_alarmed": self._alarmed_share(False),
            "mean_surprise": self.statistic_sum / self.judged if self.judged else None,
            "judged_steps": self.judged,
        }


class TermNoise:
    """Delays and noises the runtime's measured terms per env (``obs_delay_noise``), or passes them through."""

    def __init__(self, metadata: dict, num_envs: int, delay: int, noise_factor: float, seed: int = 0):
        self.delay, self.rng = delay, np.random.default_rng(seed)
        self.amplitude = {}
        for term in (metadata.get("observation") or {}).get("terms", []):
            noise = term.get("noise") or {}
            if noise_factor > 0 and "n_min" in noise and "n_max" in noise:
                self.amplitude[term["name"]] = noise_factor * 0.5 * (float(noise["n_max"]) - float(noise["n_min"]))
        self.queues = [deque(maxlen=delay + 1) for _ in range(num_envs)]

    def __call__(self, env_id: int, terms: dict[str, np.ndarray], fresh: bool) -> dict[str, np.ndarray]:
        queue = self.queues[env_id]
        if fresh:
            queue.clear()
        queue.append(terms)
        delayed = queue[0]  # the oldest kept: `delay` steps ago once the queue is full
        out = {}
        for name, value in delayed.items():
            amplitude = self.amplitude.get(name)
            out[name] = value if amplitude is None else value + self.rng.uniform(-amplitude, amplitude, value.shape)
        return out


def world_terms(env, block: dict) -> tuple[dict, dict]:
    """The monitor's measured state and instruction terms, ``{name: (N, size)}`` float32, from the env's groups."""
    obs = env.observation_manager.compute()
    states = {
        t["name"]: obs["world_model"][t["name"]].reshape(env.num_envs, -1).cpu().numpy()
        for t in block["state"]["terms"]
    }
    instruction = {
        t["name"]: obs["instruction"][t["name"]].reshape(env.num_envs, -1).cpu().numpy()
        for t in block["instruction"]["terms"]
    }
    return states, instruction


@torch.inference_mode()  # as the env is stepped elsewhere (rsl-rl, the export's recording)
def run_condition(
    env, export_dir, condition: str, changes: dict, episodes: int, seed: int = 0, on_judged=None
) -> ConditionResult:
    """Drive ``env`` with one deploy runtime per env until ``episodes`` episodes ended (each env contributes at most
    ``ceil(episodes / num_envs)``); the monitor (if exported) judges every step, and ``on_judged(surprise, fresh)``
    gets its :class:`~wam_isaac.deploy.surprise.Surprise` and which envs began an episode at that step."""
    from ..deploy import Policy, SurpriseMonitor
    from ..rollout.state import episode_success
    from .sim_terms import raw_policy_terms

    n = env.num_envs
    policies = [Policy.load(export_dir) for _ in range(n)]
    metadata = policies[0].metadata
    block = metadata.get("world_model")
    monitor = SurpriseMonitor.load(export_dir, num_envs=n) if block and block.get("monitor") else None
    delayed = condition == "obs_delay_noise"
    noise = TermNoise(metadata, n, DELAY_STEPS if delayed else 0, NOISE_FACTOR if delayed else 0.0, seed)
    world_noise = TermNoise({}, n, DELAY_STEPS if delayed else 0, 0.0, seed)
    env.reset(seed=seed)
    result = ConditionResult(condition, changes)
    quota, finished = -(-episodes // n), [0] * n
    fresh = np.ones(n, bool)
    returns, lengths = np.zeros(n), np.zeros(n, int)
    alarmed = np.zeros(n, bool)
    max_steps = (quota + 1) * int(env.max_episode_length + 1)
    for _ in range(max_steps):
        terms = raw_policy_terms(env, metadata)
        actions = np.zeros((n, policies[0].actions.dim), np.float32)
        for i, policy in enumerate(policies):
            policy.step(noise(i, {k: v[i] for k, v in terms.items()}, bool(fresh[i])))
            actions[i] = policy.last_action
        if monitor is not None:
            states, instruction = world_terms(env, block)
            rows = [
                world_noise(
                    i,
                    {**{k: v[i] for k, v in states.items()}, **{"@" + k: v[i] for k, v in instruction.items()}},
                    bool(fresh[i]),
                )
                for i in range(n)
            ]
            state_terms = {k: np.stack([r[k] for r in rows]) for k in states}
            instruction_terms = {k: np.stack([r["@" + k] for r in rows]) for k in instruction}
            surprise = monitor.step(state_terms, actions, instruction_terms)
            if on_judged is not None:
                on_judged(surprise, fresh.copy())
            judged = ~np.isnan(surprise.statistic)
            result.judged += int(judged.sum())
            result.alarms += int(surprise.alarm[judged].sum())
            result.stall_alarms += int(surprise.stall_alarm[judged].sum())
            alarmed |= surprise.alarm
            result.statistic_sum += float(surprise.statistic[judged].sum())
        fresh[:] = False
        _, rewards, terminated, truncated, _ = env.step(torch.from_numpy(actions).to(env.device))
        done = (terminated | truncated).cpu().numpy()
        returns += rewards.cpu().numpy()
        lengths += 1
        if done.any():
            success = episode_success(env, terminated, truncated).cpu().numpy()
            for i in np.flatnonzero(done):
                if finished[i] < quota:
                    result.success.append(bool(success[i]))
                    result.returns.append(float(returns[i]))
                    result.lengths.append(int(lengths[i]))
                    result.alarmed.append(bool(alarmed[i]))
                finished[i] += 1
                policies[i].reset()
            if monitor is not None:
                monitor.reset(done)
            fresh |= done
            returns[done], lengths[done], alarmed[done] = 0.0, 0, False
        if min(finished) >= quota:
            break
    return result


def condition_changes(env_cfg, condition: str) -> dict:
    """Set ``env_cfg`` up for ``condition`` in place; returns what was changed."""
    if condition == "wider_dr":
        return widen_randomization(env_cfg)
    if condition == "solver":
        return change_solver(env_cfg)
    if condition == "obs_delay_noise":
        return {"observation_delay_steps": DELAY_STEPS, "observation_noise_factor": NOISE_FACTOR}
    return {}


def transfer_eval(
    export_dir,
    task: str,
    conditions,
    num_envs: int,
    episodes: int,
    device: str,
    seed: int = 0,
    log=print,
    overrides: list[str] | tuple = (),
):
    """Every condition's :meth:`ConditionResult.to_dict`, in ``conditions`` order (``training`` and
    ``obs_delay_noise`` share one env: they differ in the runtime's input only); ``log`` gets a line per condition;
    ``overrides`` (``env.<field>=...``) apply to every condition's env."""
    from .exporter import task_env

    results = {}
    groups = [[c for c in conditions if c in ("training", "obs_delay_noise")]]
    groups += [[c] for c in conditions if c not in ("training", "obs_delay_noise")]
    for group in [g for g in groups if g]:
        changes = {}

        def configure(env_cfg, physics=group[0], changes=changes):
            changes.update(condition_changes(env_cfg, physics))

        with task_env(task, "rsl_rl_cfg_entry_point", device, num_envs, seed, configure, overrides) as (env, _):
            for condition in group:
                own = condition_changes(None, condition) if condition == "obs_delay_noise" else dict(changes)
                results[condition] = run_condition(env, export_dir, condition, own, episodes, seed).to_dict()
                if log is not None:
                    figures = {
                        k: results[condition][k] for k in ("episodes", "success_rate", "mean_return", "alarm_rate")
                    }
                    log(f"[wam] transfer-eval {condition}: {figures}")
    return {condition: results[condition] for condition in conditions}
