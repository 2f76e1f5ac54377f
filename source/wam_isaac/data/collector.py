"""Collect the per-step data of N parallel envs into whole episodes.

The collector keeps one preallocated buffer per key, shape (num_envs, max_episode_length, *spec.shape), on the
simulation's device. Each step writes every env's row at that env's current length in one indexed assignment (no
Python loop over envs). When envs finish, their episodes are gathered and copied to the host once per key for the
whole batch of finished envs, then split into :class:`Episode` objects.

Memory: ``num_envs * max_episode_length * (bytes of one step of every key)`` on the device; for example 4096 envs,
250 steps and 100 float32 values per step take 410 MB.

Typical use in a rollout loop (Isaac Lab resets done envs inside ``env.step``, so the DR parameters of a new
episode are read after the step that ended the previous one)::

    collector.begin(all_env_ids, seeds=seed, dr_params=read_dr_params(env))
    for _ in range(steps):
        actions = policy(obs)
        next_obs, rewards, terminated, truncated, _ = env.step(actions)
        step = {"obs/policy": obs["policy"], "actions": actions, "rewards": rewards, ...}
        collector.add_step(step)
        collector.drop(nonfinite_envs(step))          # a physics blow-up: the partial episode is discarded
        done = terminated | truncated
        writer.write_many(collector.finish(done, success=terminated & reached_goal))
        collector.begin(done, seeds=seed, dr_params=read_dr_params(env))
        obs = next_obs
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from .episode import Episode
from .specs import KeySpec, validate_key_specs

EnvIds = torch.Tensor | np.ndarray | Sequence[int]
"""Env indices (integers) or a boolean mask of shape (num_envs,), as a tensor on any device, an array or a list."""


class EpisodeCollector:
    """Accumulates batched per-step data from ``num_envs`` parallel envs and emits completed episodes.

    Args:
        num_envs: number of parallel envs.
        key_specs: per-step keys with their shapes and dtypes (see :mod:`wam_isaac.data.specs`).
        max_episode_length: longest episode the buffers hold [steps]; :meth:`add_step` raises if an env would
            exceed it (the driver must finish or drop episodes at the env's own time limit).
        device: device of the buffers; the same as the simulation's so that steps are stored without a copy.
    """

    def __init__(
        self,
        num_envs: int,
        key_specs: Mapping[str, KeySpec],
        max_episode_length: int,
        device: str | torch.device = "cpu",
    ) -> None:
        if num_envs < 1 or max_episode_length < 1:
            raise ValueError(f"num_envs ({num_envs}) and max_episode_length ({max_episode_length}) must be >= 1")
        self.num_envs = num_envs
        self.key_specs = validate_key_specs(key_specs)
        self.max_episode_length = max_episode_length
        self.device = torch.device(device)
        self._buffers = {
            key: torch.zeros((num_envs, max_episode_length, *spec.shape), dtype=_torch_dtype(spec.dtype), device=device)
            for key, spec in self.key_specs.items()
        }
        self._env_index = torch.arange(num_envs, device=self.device)
        self._lengths = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        # a host mirror of the lengths: checked every step and read at finish without a device sync
        self._host_lengths = np.zeros(num_envs, dtype=np.int64)
        self._seeds = torch.full((num_envs,), -1, dtype=torch.long, device=self.device)
        self._dr: dict[str, torch.Tensor] = {}
        self.num_finished = 0
        """Episodes emitted by :meth:`finish` so far."""
        self.num_dropped = 0
        """Partial episodes discarded by :meth:`drop` so far."""

    @property
    def lengths(self) -> np.ndarray:
        """Steps stored so far in each env's current episode, shape (num_envs,)."""
        return self._host_lengths.copy()

    def begin(
        self,
        env_ids: EnvIds,
        seeds: torch.Tensor | int | None = None,
        dr_params: Mapping[str, torch.Tensor] | None = None,
    ) -> None:
        """Record the metadata of the episodes starting now in ``env_ids``.

        Args:
            env_ids: the envs whose new episode starts (indices or a boolean mask).
            seeds: one seed for all, or a tensor of shape (num_envs,) indexed by ``env_ids``.
            dr_params: DR parameters of every env, each of shape (num_envs, ...), indexed by ``env_ids``; the same
                keys at every call. Parameters of episodes that started before the first call are NaN (or -1 for
                integer parameters).
        """
        ids = self._device_ids(env_ids)
        if seeds is not None:
            self._seeds[ids] = (
                _rows(seeds, ids, self.num_envs, "seeds").to(self.device) if torch.is_tensor(seeds) else int(seeds)
            )
        if dr_params is None:
            return
        if self._dr and set(dr_params) != set(self._dr):
            raise ValueError(f"dr_params keys {sorted(dr_params)} differ from the first call's {sorted(self._dr)}")
        for name, value in dr_params.items():
            if name not in self._dr:
                fill = float("nan") if value.is_floating_point() else -1
                self._dr[name] = torch.full(value.shape, fill, dtype=value.dtype, device=self.device)
            self._dr[name][ids] = _rows(value, ids, self.num_envs, f"dr_params[{name!r}]").to(self.device)

    def add_step(self, step: Mapping[str, torch.Tensor]) -> None:
        """Append one step of every env.

        Args:
            step: one tensor per key of ``key_specs``, each of shape (num_envs, *spec.shape).

        Raises:
            ValueError: a key is missing or unknown, a shape is wrong, or an env's episode would exceed
                ``max_episode_length``.
        """
        if step.keys() != self._buffers.keys():
            missing, extra = sorted(self._buffers.keys() - step.keys()), sorted(step.keys() - self._buffers.keys())
            raise ValueError(f"step keys differ from key_specs: missing {missing}, unknown {extra}")
        for key, value in step.items():
            expected = self._buffers[key].shape[:1] + self._buffers[key].shape[2:]
            if tuple(value.shape) != tuple(expected):
                raise ValueError(f"step[{key!r}] has shape {tuple(value.shape)}, expected {tuple(expected)}")
        full = np.flatnonzero(self._host_lengths >= self.max_episode_length)
        if full.size:
            raise ValueError(
                f"envs {full.tolist()[:8]} already hold max_episode_length={self.max_episode_length} steps: finish or "
                "drop their episodes first (or raise max_episode_length to the env's episode length)"
            )
        for key, value in step.items():
            buffer = self._buffers[key]
            buffer[self._env_index, self._lengths] = value.to(device=self.device, dtype=buffer.dtype)
        self._lengths += 1
        self._host_lengths += 1

    def finish(
        self, env_ids: EnvIds, success: torch.Tensor, attrs: Mapping[str, torch.Tensor] | None = None
    ) -> list[Episode]:
        """Emit the episodes of ``env_ids`` (which end with the last added step) and start new ones there.

        Envs without any stored step (for instance just dropped) emit nothing.

        Args:
            env_ids: the envs whose episode ended (indices or a boolean mask).
            success: success flag of every env, shape (num_envs,), indexed by ``env_ids``.
            attrs: extra per-episode scalars of every env, each of shape (num_envs,), e.g. ``{"timeout": truncated}``.

        Returns:
            The finished episodes on the host, ordered by env index.
        """
        host_ids = self._host_ids(env_ids)
        host_ids = host_ids[self._host_lengths[host_ids] > 0]
        if host_ids.size == 0:
            return []
        ids = torch.as_tensor(host_ids, device=self.device)
        lengths = self._host_lengths[host_ids]
        longest = int(lengths.max())
        # one gather and one device-to-host copy per key for the whole batch of finished envs
        data = {key: buffer[ids, :longest].cpu().numpy() for key, buffer in self._buffers.items()}
        success_host = _rows(success, ids, self.num_envs, "success").cpu().numpy()
        seeds = self._seeds[ids].cpu().numpy()
        dr = {name: value[ids].cpu().numpy() for name, value in self._dr.items()}
        extra = {
            name: _rows(value, ids, self.num_envs, f"attrs[{name!r}]").cpu().numpy()
            for name, value in (attrs or {}).items()
        }
        episodes = [
            Episode(
                # copies, so that a queued episode does not keep the whole batch's arrays alive
                data={key: array[row, :length].copy() for key, array in data.items()},
                env_id=int(env_id),
                seed=int(seeds[row]),
                success=bool(success_host[row]),
                dr={name: array[row].copy() for name, array in dr.items()},
                attrs={name: array[row].item() for name, array in extra.items()},
            )
            for row, (env_id, length) in enumerate(zip(host_ids, lengths, strict=True))
        ]
        self._restart(host_ids, ids)
        self.num_finished += len(episodes)
        return episodes

    def drop(self, env_ids: EnvIds) -> int:
        """Discard the partial episodes of ``env_ids`` (a physics blow-up, a NaN) and count them as dropped.

        Every listed env counts once, whether or not it had stored steps: its episode began and will not finish.

        Returns:
            The number of episodes dropped by this call.
        """
        host_ids = self._host_ids(env_ids)
        self._restart(host_ids, torch.as_tensor(host_ids, device=self.device))
        self.num_dropped += int(host_ids.size)
        return int(host_ids.size)

    def _restart(self, host_ids: np.ndarray, ids: torch.Tensor) -> None:
        self._lengths[ids] = 0
        self._host_lengths[host_ids] = 0

    def _device_ids(self, env_ids: EnvIds) -> torch.Tensor:
        if torch.is_tensor(env_ids) and env_ids.dtype == torch.bool:
            if env_ids.shape != (self.num_envs,):
                raise ValueError(f"env mask has shape {tuple(env_ids.shape)}, expected ({self.num_envs},)")
            return env_ids.to(self.device).nonzero().squeeze(-1)
        return torch.as_tensor(self._host_ids(env_ids), device=self.device)

    def _host_ids(self, env_ids: EnvIds) -> np.ndarray:
        ids = env_ids.detach().cpu().numpy() if torch.is_tensor(env_ids) else np.asarray(env_ids)
        if ids.dtype == np.bool_:
            if ids.shape != (self.num_envs,):
                raise ValueError(f"env mask has shape {ids.shape}, expected ({self.num_envs},)")
            return np.flatnonzero(ids)
        ids = np.unique(ids.astype(np.int64).reshape(-1))
        if ids.size and (ids[0] < 0 or ids[-1] >= self.num_envs):
            raise ValueError(f"env ids must be in [0, {self.num_envs}), got {ids.tolist()[:8]}")
        return ids


def nonfinite_envs(step: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Boolean mask of shape (num_envs,): envs with a NaN or an infinity in any floating-point value of ``step``."""
    masks = [
        ~torch.isfinite(value).reshape(value.shape[0], -1).all(dim=1)
        for value in step.values()
        if value.is_floating_point()
    ]
    if not masks:
        first = next(iter(step.values()))
        return torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
    return torch.stack([mask.to(masks[0].device) for mask in masks]).any(dim=0)


def _rows(values: torch.Tensor, ids: torch.Tensor, num_envs: int, name: str) -> torch.Tensor:
    """Rows ``ids`` of a per-env tensor of shape (num_envs, ...), on the tensor's device."""
    values = torch.as_tensor(values)
    if values.ndim == 0 or values.shape[0] != num_envs:
        raise ValueError(f"{name} has shape {tuple(values.shape)}, expected ({num_envs}, ...)")
    return values[ids.to(values.device)]


def _torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a NumPy dtype name."""
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype
