"""Isaac Lab task packages of wam_isaac, registered with gymnasium on import.

Isaac Lab finds this package through the ``isaaclab.tasks`` entry point, so ``isaaclab list_envs`` and
``isaaclab train --task WAM-...`` see these tasks.
"""

import importlib
import pkgutil

TASK_PREFIX = "WAM-"
"""Every task id registered here starts with this prefix."""

for _module in pkgutil.iter_modules(__path__):
    if _module.ispkg:
        importlib.import_module(f"{__name__}.{_module.name}")
