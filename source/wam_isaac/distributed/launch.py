"""``--num_procs P``: start the same job ``torchrun --standalone --nproc_per_node=P -m wam_isaac ...`` would, from the
command itself (through ``torch.distributed.run``: the same elastic agent, rendezvous and environment variables), and
turn a failed rank into one line that names it."""

from __future__ import annotations

import signal
import sys

from ..cli.errors import UsageError

EXIT_RANK_FAILED = 1
"""Exit code of a job in which a rank failed (bad input stays 2, as everywhere in ``wam``)."""


class RankFailed(UsageError):
    """A rank of a launched job failed; the message names it."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.exit_code = EXIT_RANK_FAILED


def strip_option(argv: list[str], option: str) -> list[str]:
    """``argv`` without ``option`` and its value (``--option V`` or ``--option=V``)."""
    result, skip = [], False
    for token in argv:
        if skip:
            skip = False
        elif token == option:
            skip = True
        elif not token.startswith(f"{option}="):
            result.append(token)
    return result


def launch(num_procs: int, module_args: list[str], consequence: str = "") -> int:
    """Run ``python -m wam_isaac <module_args>`` as ``num_procs`` ranks on this node; 0 when every rank exits 0.
    ``consequence`` ends the message of a failure (what it means for the user).

    Raises:
        RankFailed: a rank exited non-zero or was killed (the message names the first one and how it ended).
    """
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import get_args_parser, run

    # SIGUSR1 (SLURM's --signal warning) stops the ranks as SIGTERM does: the agent forwards the signal it received
    argv = ["--signals_to_handle=SIGTERM,SIGINT,SIGHUP,SIGQUIT,SIGUSR1", "--standalone"]
    argv += [f"--nproc_per_node={num_procs}", "--max_restarts=0", "--monitor_interval=0.2"]
    args = get_args_parser().parse_args([*argv, "-m", "wam_isaac", *module_args])
    try:
        run(args)
    except ChildFailedError as error:
        failed = RankFailed(describe_failure(error.failures, num_procs) + consequence)
        if _first(error.failures)[1].exitcode == UsageError.exit_code:
            failed.exit_code = UsageError.exit_code  # bad input the ranks found (each printed it): exit 2 as usual
        raise failed from None
    except SignalException as error:  # the launcher itself was signalled: the ranks got the signal too
        print(f"[wam] {signal.Signals(error.sigval).name}: the {num_procs} ranks were stopped", file=sys.stderr)
        return 0 if error.sigval in (signal.SIGTERM, signal.SIGUSR1) else EXIT_RANK_FAILED
    return 0


def describe_failure(failures: dict, num_procs: int) -> str:
    """One line naming the rank that failed first (and how many failed), from torch elastic's failures."""
    rank, failure = _first(failures)
    code = failure.exitcode
    how = f"was killed by {signal.Signals(-code).name}" if code < 0 else f"exited with code {code} (its error is above)"
    others = sorted(set(failures) - {rank})
    also = f", then rank(s) {', '.join(map(str, others))} stopped" if others else ""
    return f"rank {rank} of {num_procs} {how}{also}"


def _first(failures: dict):
    """The failure that caused the others: not one the agent's own SIGTERM (its shutdown of the other ranks) ended,
    then the earliest, then the lowest rank."""
    return min(failures.items(), key=lambda item: (item[1].exitcode == -signal.SIGTERM, item[1].timestamp, item[0]))
