"""Config values (Isaac Lab configclasses, tensors, tuples, callables) as plain JSON values."""

from __future__ import annotations

import math
from typing import Any


def jsonable(value: Any) -> Any:
    """``value`` as JSON-serializable data: dicts, lists, floats (full precision), strings; callables by
    ``module:qualname``; tensors and arrays as nested lists; slices as ``"all"`` or ``[start, stop, step]``."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set):
        return [jsonable(item) for item in value]
    if isinstance(value, slice):
        return "all" if value == slice(None) else [value.start, value.stop, value.step]
    if hasattr(value, "tolist"):  # torch tensors, numpy arrays and scalars
        return jsonable(value.tolist())
    if hasattr(value, "__dataclass_fields__"):  # configclasses (SceneEntityCfg, noise cfgs, ...)
        fields = {name: getattr(value, name) for name in value.__dataclass_fields__ if not name.startswith("_")}
        return {"type": type(value).__name__, **jsonable(fields)}
    if callable(value):
        name = getattr(value, "__qualname__", None) or type(value).__qualname__
        module = getattr(value, "__module__", None) or type(value).__module__
        return f"{module}:{name}"
    return str(value)


def callable_name(func: Any) -> str:
    """``module:qualname`` of a function, or of the class of a callable instance (class-based Isaac Lab terms)."""
    target = func if hasattr(func, "__qualname__") else type(func)
    return f"{target.__module__}:{target.__qualname__}"
