"""Counting the host synchronizations a piece of code would make on a GPU, on the CPU.

On the CPU nothing waits, so the counter looks at the calls that make a CUDA host wait for the device, through a
``TorchFunctionMode`` (every torch function and tensor method, with its arguments):

- reading a value on the host: ``bool()``, ``int()``, ``float()``, ``.item()``, ``.tolist()`` (each an
  ``aten._local_scalar_dense`` or a blocking copy on CUDA);
- data-dependent shapes: ``nonzero``, ``argwhere``, ``unique``, ``masked_select``, indexing with a boolean tensor;
- blocking copies to the host: ``.cpu()``, ``.numpy()`` of a tensor that is not already a host copy,
  ``.to("cpu")`` without ``non_blocking=True`` that copies (a ``.to`` that returns its input is a no-op, as the
  same call is on CUDA with the simulation's device as target; on the CPU ``.to("cpu")`` of a simulation tensor is
  such a no-op too, so code must spell its host copies ``.cpu()`` or ``non_blocking=True`` to be counted right);
- blocking copies to the device: ``.to(device)`` of a host tensor (``torch.from_numpy``, a host copy) without
  ``non_blocking=True``, ``torch.as_tensor`` / ``torch.tensor`` of host data (arrays, lists) with a ``device``.

A tensor counts as a device tensor (the simulation's) unless it came from the host (``torch.from_numpy``, a copy to
the host, ``as_tensor`` of host data without a device); a copy with ``non_blocking=True`` is free (it completes at
the next synchronization). :meth:`SyncCounter.paused` excludes code that is not ours (Isaac Lab's ``env.step``).
"""

from __future__ import annotations

import contextlib
import traceback
from collections import Counter

import torch
from torch.overrides import TorchFunctionMode

_SCALAR_READS = {"__bool__", "__int__", "__float__", "__index__", "item", "tolist"}
_DATA_DEPENDENT = {"nonzero", "argwhere", "unique", "unique_consecutive", "masked_select"}


class SyncCounter(TorchFunctionMode):
    """Counts the calls that synchronize a CUDA host with the device; :attr:`events` names them."""

    def __init__(self):
        super().__init__()
        self.count = 0
        self.events: Counter[str] = Counter()
        self._paused = 0
        self.where: list[tuple[int, str, str]] = []
        """(count, event, the calling line) of every synchronization counted."""

    @contextlib.contextmanager
    def paused(self):
        self._paused += 1
        try:
            yield
        finally:
            self._paused -= 1

    @contextlib.contextmanager
    def resumed(self):
        paused, self._paused = self._paused, 0
        try:
            yield
        finally:
            self._paused = paused

    def _hit(self, name: str) -> None:
        if not self._paused:
            self.count += 1
            self.events[name] += 1
            stack = reversed(traceback.extract_stack()[:-2])
            caller = next((f for f in stack if "host_syncs" not in f.filename and "/torch/" not in f.filename), None)
            self.where.append((self.count, name, f"{caller.filename}:{caller.lineno}" if caller else "?"))

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", str(func))
        this = args[0] if args and torch.is_tensor(args[0]) else None
        host = this is not None and getattr(this, "_wam_host", False)
        to_host = False
        if name in _SCALAR_READS and not host or name in _DATA_DEPENDENT:
            self._hit(name)
        elif name in ("__getitem__", "__setitem__") and _has_bool_index(args[1] if len(args) > 1 else None):
            self._hit(f"{name}[bool]")
        elif name == "cpu":
            to_host = True
            if not host:
                self._hit("cpu")
        elif name == "numpy" and not host:
            self._hit("numpy")
        elif name == "to":
            target = _target_device(args[1:], kwargs)
            non_blocking = kwargs.get("non_blocking", False) or (len(args) > 2 and args[2] is True)
            result = func(*args, **kwargs)
            if result is this:  # already there: a no-op on any device
                if target is not None and target.type == "cpu" and non_blocking:
                    result._wam_host = True  # meant as the host copy (on CUDA, a pinned one)
                return result
            if target is not None and target.type == "cpu":
                to_host = True
                if not host and not non_blocking:
                    self._hit("to(cpu)")
            elif target is not None and host and not non_blocking:
                self._hit("to(device) of host data")
            result._wam_host = to_host or (host and target is None)
            return result
        elif name in ("as_tensor", "tensor") and args and not torch.is_tensor(args[0]) and kwargs.get("device"):
            self._hit(f"{name}(host data, device)")
        result = func(*args, **kwargs)
        if torch.is_tensor(result) and (
            to_host or name == "from_numpy" or (name in ("as_tensor", "tensor") and kwargs.get("device") is None)
        ):
            result._wam_host = True
        return result


def _target_device(args, kwargs) -> torch.device | None:
    device = kwargs.get("device")
    if device is None and args and isinstance(args[0], (str, torch.device)):
        device = args[0]
    return torch.device(device) if device is not None else None


def _has_bool_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in items)
