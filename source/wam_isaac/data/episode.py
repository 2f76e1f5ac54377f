"""One complete episode of one env, as it is stored: host arrays and per-episode metadata; and its packing into
bytes for the writing process (through shared memory or a pipe)."""

from __future__ import annotations

import math
import pickle
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Episode:
    """One complete episode of one env, on the host."""

    data: dict[str, np.ndarray]
    """Per-step arrays keyed like the dataset (``obs/policy``, ``actions``, ``rewards``, ``dones``,
    ``states/<name>``, ``labels/<name>``), each of shape (num_samples, *spec.shape)."""
    env_id: int
    """Index of the env that produced the episode."""
    seed: int
    """Seed recorded for the episode (the run's seed unless the driver derives one per episode); -1 if unknown."""
    success: bool
    """Whether the episode ended in the task's success condition."""
    dr: dict[str, np.ndarray] = field(default_factory=dict)
    """Domain-randomization parameters the episode ran with, keyed like
    :func:`wam_isaac.envs.dr.read_dr_params` (``<asset>/body_mass``...), each of that parameter's per-env shape."""
    attrs: dict[str, Any] = field(default_factory=dict)
    """Extra per-episode scalars (bool, int, float or str), e.g. ``timeout``; stored as HDF5 attributes."""
    final: dict[str, np.ndarray] = field(default_factory=dict)
    """The state after the episode's last action, recorded before Isaac Lab's in-``step`` reset overwrote it:
    one row per key, keyed like :attr:`data` (``states/<asset>/<field>``, ``obs/<group>[/<term>]``), each of shape
    (*spec.shape); it is the successor of the last sample (s_T of the last transition). Empty if not recorded."""

    @property
    def num_samples(self) -> int:
        """Number of steps (transitions) in the episode."""
        return int(next(iter(self.data.values())).shape[0])


class PackedEpisode:
    """An episode laid out for a byte buffer: a header (8-byte length, then the pickled metadata and each array's
    name, dtype and shape) followed by the arrays' raw bytes, back to back. About 10x cheaper than pickling the
    arrays one by one (NumPy's per-array pickling dominates for an episode of many small arrays).

    Nothing is copied until :meth:`copy_into`, so the caller can size (or find) the destination first.
    """

    def __init__(self, episode: Episode) -> None:
        self.arrays = [np.asarray(array) for array in (*episode.data.values(), *episode.dr.values())]
        header = pickle.dumps(
            (
                list(episode.data),
                list(episode.dr),
                [(array.dtype.str, array.shape) for array in self.arrays],
                episode.env_id,
                episode.seed,
                episode.success,
                episode.attrs,
            ),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        self.header = len(header).to_bytes(8, "little") + header
        self.nbytes = len(self.header) + sum(array.nbytes for array in self.arrays)
        """Size of the packed episode [bytes]."""

    def copy_into(self, buffer: memoryview) -> None:
        """Write the packed episode to the first :attr:`nbytes` bytes of the writable ``buffer`` (one copy per
        array, strided or not)."""
        offset = len(self.header)
        buffer[:offset] = self.header
        for array in self.arrays:
            if array.size:
                destination = np.frombuffer(buffer, array.dtype, count=array.size, offset=offset)
                np.copyto(destination.reshape(array.shape), array)
            offset += array.nbytes


def pack_episode(episode: Episode) -> bytearray:
    """``episode`` as bytes (see :class:`PackedEpisode`), e.g. for a pipe."""
    packed = PackedEpisode(episode)
    payload = bytearray(packed.nbytes)
    packed.copy_into(memoryview(payload))
    return payload


def unpack_episode(payload: bytes | memoryview) -> Episode:
    """The episode :func:`pack_episode` packed; its arrays are read-only views of ``payload``."""
    payload = memoryview(payload)
    size = int.from_bytes(payload[:8], "little")
    data_keys, dr_keys, layout, env_id, seed, success, attrs = pickle.loads(payload[8 : 8 + size])
    offset, arrays = 8 + size, []
    for dtype, shape in layout:
        array = np.frombuffer(payload, np.dtype(dtype), count=math.prod(shape), offset=offset).reshape(shape)
        arrays.append(array)
        offset += array.nbytes
    data = dict(zip(data_keys, arrays[: len(data_keys)], strict=True))
    dr = dict(zip(dr_keys, arrays[len(data_keys) :], strict=True))
    return Episode(data=data, env_id=env_id, seed=seed, success=success, dr=dr, attrs=attrs)
