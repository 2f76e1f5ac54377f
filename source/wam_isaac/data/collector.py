"""Collect the per-step data of N parallel envs into whole episodes.

The collector keeps, on the simulation's device, one time-major ring buffer per dtype, shape
(max_episode_length, num_envs, width), where ``width`` is the number of values of one step of every key of that
dtype, side by side. Each step concatenates every key into the buffer's current time slot in one operation per dtype
(about 50 keys per step: one ``torch.cat`` instead of 50 indexed assignments). An env's current episode is the last
``lengths[env]`` slots of its column. When envs finish, their episodes are gathered on the device and copied to the
host once per dtype for the whole batch of finished envs (their metadata and final states in one more copy), then
split into :class:`Episode` objects whose arrays are views of one copy per episode. :meth:`~EpisodeCollector.
finish_async` makes those copies non-blocking; the bookkeeping (lengths, seeds) is on the host, so a rollout loop
that passes host env ids synchronizes with the device only when it needs to know which envs finished.

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
        collector.drop(collector.last_step_nonfinite())  # a physics blow-up: the partial episode is discarded
        done = terminated | truncated
        writer.write_many(collector.finish(done, success=terminated & reached_goal))
        collector.begin(done, seeds=seed, dr_params=read_dr_params(env))
        obs = next_obs
"""

from __future__ import annotations

import math
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
        self._columns = _columns(self.key_specs)
        self._groups: dict[str, list[str]] = {}
        """The keys of each dtype, in the order their columns are laid out."""
        for key, (dtype, _, _) in self._columns.items():
            self._groups.setdefault(dtype, []).append(key)
        self._rings = {
            dtype: torch.zeros(
                (max_episode_length, num_envs, self._columns[keys[-1]][2]), dtype=_torch_dtype(dtype), device=device
            )
            for dtype, keys in self._groups.items()
        }
        self._step = 0  # steps added so far: the next one goes to time slot _step % max_episode_length
        # steps of each env's current episode, on the host: checked every step and read at finish without a sync
        self._host_lengths = np.zeros(num_envs, dtype=np.int64)
        self._seeds = np.full(num_envs, -1, dtype=np.int64)  # on the host: the driver's bookkeeping
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
            env_ids: the envs whose new episode starts (indices or a boolean mask); host indices (a NumPy array
                or a list) cost no synchronization with the device.
            seeds: one seed for all, or a tensor or array of shape (num_envs,) indexed by ``env_ids``.
            dr_params: DR parameters of every env, each of shape (num_envs, ...), indexed by ``env_ids``; the same
                keys at every call. Parameters of episodes that started before the first call are NaN (or -1 for
                integer parameters).
        """
        host_ids = None if torch.is_tensor(env_ids) and env_ids.dtype == torch.bool else self._host_ids(env_ids)
        if seeds is not None:
            host_ids = self._host_ids(env_ids) if host_ids is None else host_ids
            self._seeds[host_ids] = (
                _host_rows(seeds, host_ids, self.num_envs, "seeds") if not isinstance(seeds, int) else seeds
            )
        if dr_params is None:
            return
        ids = self._device_ids(env_ids) if host_ids is None else _to_device(host_ids, self.device)
        if self._dr and set(dr_params) != set(self._dr):
            raise ValueError(f"dr_params keys {sorted(dr_params)} differ from the first call's {sorted(self._dr)}")
        for name, value in dr_params.items():
            if name not in self._dr:
                fill = float("nan") if value.is_floating_point() else -1
                self._dr[name] = torch.full(value.shape, fill, dtype=value.dtype, device=self.device)
            self._dr[name][ids] = _on(_rows(value, ids, self.num_envs, f"dr_params[{name!r}]"), self._dr[name])

    def add_step(self, step: Mapping[str, torch.Tensor]) -> None:
        """Append one step of every env.

        Args:
            step: one tensor per key of ``key_specs``, each of shape (num_envs, *spec.shape).

        Raises:
            ValueError: a key is missing or unknown, a shape is wrong, or an env's episode would exceed
                ``max_episode_length``.
        """
        if step.keys() != self.key_specs.keys():
            missing, extra = sorted(self.key_specs.keys() - step.keys()), sorted(step.keys() - self.key_specs.keys())
            raise ValueError(f"step keys differ from key_specs: missing {missing}, unknown {extra}")
        for key, value in step.items():
            expected = (self.num_envs, *self.key_specs[key].shape)
            if tuple(value.shape) != expected:
                raise ValueError(f"step[{key!r}] has shape {tuple(value.shape)}, expected {expected}")
        full = np.flatnonzero(self._host_lengths >= self.max_episode_length)
        if full.size:
            raise ValueError(
                f"envs {full.tolist()[:8]} already hold max_episode_length={self.max_episode_length} steps: finish or "
                "drop their episodes first (or raise max_episode_length to the env's episode length)"
            )
        slot = self._step % self.max_episode_length
        for dtype, keys in self._groups.items():
            ring = self._rings[dtype]
            values = [_on(step[key], ring).reshape(self.num_envs, self._width(key)) for key in keys]
            torch.cat(values, dim=1, out=ring[slot])
        self._step += 1
        self._host_lengths += 1

    def last_step_nonfinite(self) -> torch.Tensor:
        """Boolean mask of shape (num_envs,), on the collector's device: envs with a NaN or an infinity in any
        floating-point value of the last added step (the same as :func:`nonfinite_envs` of that step)."""
        slot = (self._step - 1) % self.max_episode_length
        bad = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        for ring in self._rings.values():
            if ring.is_floating_point():
                bad |= _nonfinite_rows(ring[slot])
        return bad

    def finish(
        self,
        env_ids: EnvIds,
        success: torch.Tensor,
        attrs: Mapping[str, torch.Tensor | np.ndarray] | None = None,
        final: Mapping[str, torch.Tensor] | None = None,
    ) -> list[Episode]:
        """Emit the episodes of ``env_ids`` (which end with the last added step) and start new ones there.

        Envs without any stored step (for instance just dropped) emit nothing.

        Args:
            env_ids: the envs whose episode ended (indices or a boolean mask).
            success: success flag of every env, shape (num_envs,), indexed by ``env_ids``.
            attrs: extra per-episode scalars of every env, each of shape (num_envs,), e.g. ``{"timeout": truncated}``
                (tensors on any device, or host arrays).
            final: each env's state after its last action, keyed like the steps (``states/...``, ``obs/...``), each
                of shape (num_envs, *spec.shape); becomes :attr:`Episode.final`.

        Returns:
            The finished episodes on the host, ordered by env index.
        """
        return self.finish_async(env_ids, success, attrs, final).episodes()

    def finish_async(
        self,
        env_ids: EnvIds,
        success: torch.Tensor,
        attrs: Mapping[str, torch.Tensor | np.ndarray] | None = None,
        final: Mapping[str, torch.Tensor] | None = None,
    ) -> PendingEpisodes:
        """:meth:`finish` without waiting for the device: the episodes' steps are gathered on the device and copied
        to the host with non-blocking copies (one per dtype), and their metadata (success, DR parameters, device
        ``attrs``, ``final``) in one more; :meth:`PendingEpisodes.episodes` waits for the copies and builds the
        episodes. With host ``env_ids`` (a NumPy array or a list) nothing here synchronizes with the device, so a
        rollout loop can build the episodes after its next synchronization, when the copies are done."""
        host_ids = self._host_ids(env_ids)
        host_ids = host_ids[self._host_lengths[host_ids] > 0]
        if host_ids.size == 0:
            return PendingEpisodes([], self)
        lengths = self._host_lengths[host_ids].copy()
        ids = _to_device(host_ids, self.device)
        data = {dtype: value.to("cpu", non_blocking=True) for dtype, value in self._gather(host_ids, lengths).items()}
        device_meta = {"success": _rows(success, ids, self.num_envs, "success")}
        device_meta.update({f"dr/{name}": value[ids] for name, value in self._dr.items()})
        host_attrs = {}
        for name, value in (attrs or {}).items():
            if torch.is_tensor(value):
                device_meta[f"attrs/{name}"] = _rows(value, ids, self.num_envs, f"attrs[{name!r}]")
            else:
                host_attrs[name] = _host_rows(value, host_ids, self.num_envs, f"attrs[{name!r}]")
        for key, value in (final or {}).items():
            if key not in self.key_specs or tuple(value.shape) != (self.num_envs, *self.key_specs[key].shape):
                raise ValueError(
                    f"final[{key!r}] has shape {tuple(value.shape)}: expected a step key of shape "
                    f"({self.num_envs}, *spec.shape)"
                )
            device_meta[f"final/{key}"] = _rows(value, ids, self.num_envs, f"final[{key!r}]")
        layout = [(name, value.dtype, tuple(value.shape[1:])) for name, value in device_meta.items()]
        # one copy for all of it: exact in float64 (integers below 2^53)
        packed = torch.cat([value.reshape(len(host_ids), -1).to(torch.float64) for value in device_meta.values()], 1)
        pending = PendingEpisodes(
            [
                (int(env_id), int(length), int(self._seeds[env_id]))
                for env_id, length in zip(host_ids, lengths, strict=True)
            ],
            self,
            data=data,
            meta=packed.to("cpu", non_blocking=True),
            layout=layout,
            host_attrs=host_attrs,
        )
        self._restart(host_ids)
        self.num_finished += len(host_ids)
        return pending

    def drop(self, env_ids: EnvIds) -> int:
        """Discard the partial episodes of ``env_ids`` (a physics blow-up, a NaN) and count them as dropped.

        Every listed env counts once, whether or not it had stored steps: its episode began and will not finish.

        Returns:
            The number of episodes dropped by this call.
        """
        host_ids = self._host_ids(env_ids)
        self._restart(host_ids)
        self.num_dropped += int(host_ids.size)
        return int(host_ids.size)

    def _gather(self, host_ids: np.ndarray, lengths: np.ndarray) -> dict[str, torch.Tensor]:
        """The last ``max(lengths)`` steps of envs ``host_ids``, per dtype, shape (envs, steps, width), on the device:
        one gather per dtype for the whole batch (rows past an env's length are other episodes' steps)."""
        depth = self.max_episode_length
        steps = np.arange(int(lengths.max()))
        slots = (self._step - lengths[:, None] + steps[None, :]) % depth  # time slot of each env's step
        rows = _to_device((slots * self.num_envs + host_ids[:, None]).reshape(-1), self.device)
        return {
            dtype: ring.view(depth * self.num_envs, ring.shape[-1]).index_select(0, rows).view(*slots.shape, -1)
            for dtype, ring in self._rings.items()
        }

    def _width(self, key: str) -> int:
        """Values of one step of one env of ``key``."""
        _, start, stop = self._columns[key]
        return stop - start

    def _split(self, blocks: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One episode's per-dtype blocks of shape (steps, width) as per-key views of shape (steps, *spec.shape)."""
        length = next(iter(blocks.values())).shape[0]
        return {
            key: blocks[dtype][:, start:stop].reshape(length, *self.key_specs[key].shape)
            for key, (dtype, start, stop) in self._columns.items()
        }

    def _restart(self, host_ids: np.ndarray) -> None:
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


class PendingEpisodes:
    """Episodes :meth:`EpisodeCollector.finish_async` emitted, whose arrays may still be on their way to the host."""

    def __init__(self, rows: list[tuple[int, int, int]], collector: EpisodeCollector, **copies) -> None:
        self._rows = rows  # (env id, length, seed) per episode
        self._collector = collector
        self._copies = copies
        self._event = None
        if rows and collector.device.type == "cuda":
            self._event = torch.cuda.Event()
            self._event.record(torch.cuda.current_stream(collector.device))

    def __len__(self) -> int:
        return len(self._rows)

    def episodes(self) -> list[Episode]:
        """The episodes on the host, ordered by env index (waits for the copies if they are not done)."""
        if not self._rows:
            return []
        if self._event is not None:
            self._event.synchronize()
        copies, collector = self._copies, self._collector
        data = {dtype: value.numpy() for dtype, value in copies["data"].items()}
        meta, column, fields = copies["meta"].numpy(), 0, {}
        for name, dtype, shape in copies["layout"]:
            width = math.prod(shape)
            values = meta[:, column : column + width].reshape(len(self._rows), *shape)
            fields[name] = values.astype(str(dtype).removeprefix("torch."))
            column += width
        final_keys = [name for name, _, _ in copies["layout"] if name.startswith("final/")]
        episodes = []
        for row, (env_id, length, seed) in enumerate(self._rows):
            attrs = {name.removeprefix("attrs/"): fields[name][row].item() for name in fields if name[:6] == "attrs/"}
            attrs.update({name: values[row].item() for name, values in copies["host_attrs"].items()})
            episodes.append(
                Episode(
                    data=collector._split({dtype: array[row, :length].copy() for dtype, array in data.items()}),
                    env_id=env_id,
                    seed=seed,
                    success=bool(fields["success"][row]),
                    dr={name.removeprefix("dr/"): fields[name][row].copy() for name in fields if name[:3] == "dr/"},
                    attrs=attrs,
                    final={name.removeprefix("final/"): fields[name][row].copy() for name in final_keys},
                )
            )
        return episodes


def _on(value: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``value`` on ``like``'s device with its dtype (itself if it already is)."""
    if value.device == like.device and value.dtype == like.dtype:
        return value
    return value.to(device=like.device, dtype=like.dtype)


def _to_device(host: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host array on ``device`` without waiting for the device (a non-blocking copy; the source is staged at
    once, so it may be reused right after)."""
    return torch.from_numpy(np.ascontiguousarray(host)).to(device, non_blocking=True)


def _host_rows(values, host_ids: np.ndarray, num_envs: int, name: str) -> np.ndarray:
    """Rows ``host_ids`` of a per-env array or tensor of shape (num_envs, ...), on the host."""
    values = values.detach().cpu().numpy() if torch.is_tensor(values) else np.asarray(values)
    if values.ndim == 0 or values.shape[0] != num_envs:
        raise ValueError(f"{name} has shape {tuple(values.shape)}, expected ({num_envs}, ...)")
    return values[host_ids]


def nonfinite_envs(step: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """Boolean mask of shape (num_envs,): envs with a NaN or an infinity in any floating-point value of ``step``."""
    first = next(iter(step.values()))
    bad = torch.zeros(first.shape[0], dtype=torch.bool, device=first.device)
    for value in step.values():
        if value.is_floating_point():
            bad |= _nonfinite_rows(value.reshape(value.shape[0], math.prod(value.shape[1:]))).to(bad.device)
    return bad


SERIAL_ELEMENTS = 32768
"""ATen's grain size: a CPU operation on fewer elements runs on the calling thread. A larger one wakes torch's
worker threads, which can cost far more than the operation itself when the other cores are busy, so the finiteness
check is split into blocks of at most this many elements."""


def _nonfinite_rows(values: torch.Tensor) -> torch.Tensor:
    """Boolean mask of shape (rows,): rows of the 2-d ``values`` holding a NaN or an infinity."""
    rows_per_chunk = max(1, SERIAL_ELEMENTS // max(1, values.shape[1]))
    # x * 0 is 0 for a finite x and NaN for NaN or +-inf: a sum per row instead of a boolean reduction (3x slower)
    return torch.cat([torch.isnan((chunk * 0).sum(dim=1)) for chunk in values.split(rows_per_chunk)])


def _columns(key_specs: Mapping[str, KeySpec]) -> dict[str, tuple[str, int, int]]:
    """Where each key lies in the buffers: (dtype, first column, column after the last), keys of one dtype side by
    side in the order of ``key_specs``."""
    widths: dict[str, int] = {}
    columns = {}
    for key, spec in key_specs.items():
        start = widths.get(spec.dtype, 0)
        widths[spec.dtype] = start + math.prod(spec.shape)
        columns[key] = (spec.dtype, start, widths[spec.dtype])
    return columns


def _rows(values: torch.Tensor, ids: torch.Tensor, num_envs: int, name: str) -> torch.Tensor:
    """Rows ``ids`` of a per-env tensor of shape (num_envs, ...), on the tensor's device."""
    values = torch.as_tensor(values)
    if values.ndim == 0 or values.shape[0] != num_envs:
        raise ValueError(f"{name} has shape {tuple(values.shape)}, expected ({num_envs}, ...)")
    return values[ids if ids.device == values.device else ids.to(values.device)]


def _torch_dtype(dtype: str) -> torch.dtype:
    """The torch dtype of a NumPy dtype name."""
    return torch.from_numpy(np.zeros(0, dtype=dtype)).dtype
