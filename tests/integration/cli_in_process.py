"""``wam <args>`` run in the test's own process: the same entry point as ``python -m wam_isaac``, without a new
interpreter importing torch and Isaac Lab again (most of a short command's CPU time). Only for commands that need no
process of their own: a test that kills or signals a run starts it as a subprocess."""

from __future__ import annotations

import contextlib
import io
import signal
import subprocess


def wam(*args: str) -> subprocess.CompletedProcess:
    """Run ``wam *args`` here: its exit code, stdout and stderr (what it prints to ``sys.stdout``/``sys.stderr``), as
    :func:`subprocess.run` with ``capture_output=True, text=True`` returns them. Signal handlers a command installs
    (``wam generate`` catches SIGTERM and SIGUSR1) are restored afterwards."""
    from wam_isaac.cli import main

    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, signal.SIGUSR1)}
    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main(list(args))
    except SystemExit as exit_:
        code = 0 if exit_.code is None else exit_.code if isinstance(exit_.code, int) else 1
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    return subprocess.CompletedProcess(["wam", *args], code, stdout.getvalue(), stderr.getvalue())
