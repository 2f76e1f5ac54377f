"""Isaac Lab's ``launch_simulation`` with refusals kept to one line.

``launch_simulation`` prints the traceback of any exception that leaves its block (and closes the launchers with exit
code 1). Bad input found only once the simulator is up (a task override that does not apply, an export that fails
validation) is a one-line error, not a crash: :func:`launched` holds the chosen exception types inside the block,
lets the simulation close cleanly, and raises them afterwards. Every other exception goes through
``launch_simulation`` as before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def launched(env_cfg, device: str, refusals: tuple[type[BaseException], ...]) -> Iterator[None]:
    """``launch_simulation(env_cfg, {"device": device})``; an exception of a type in ``refusals`` raised inside is
    re-raised after the simulation has closed, without launch_simulation's traceback."""
    from isaaclab.app import launch_simulation

    refused = None
    with launch_simulation(env_cfg, {"device": device}):
        try:
            yield
        except refusals as error:
            refused = error
    if refused is not None:
        raise refused
