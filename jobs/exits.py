"""How `merv` ends: one exit code per outcome, for schedulers, and every expected error as one
line on stderr that says what to do (a traceback only with `merv --debug`)."""

from __future__ import annotations

import errno
import re
import sys
import traceback

OK = 0  # finished; failed videos (if any) within --max-failed
BUG = 1  # an unexpected error: a bug in merv (Python's own code for an uncaught error)
USAGE = 2  # a bad command line, config, --store or weights path; nothing was started
TOO_MANY_FAILED = 3  # finished, but more videos failed than --max-failed allows
INCOMPLETE = 4  # started but could not finish (store, lock, disk, I/O, Ray); a rerun resumes

EXIT_CODES_HELP = (
    "exit codes: 0 finished (failed videos are rows with a reason, within --max-failed); "
    "1 internal error (a bug: rerun with `merv --debug` and report the traceback); "
    "2 bad command line, config, --store or weights: nothing was started; "
    "3 finished, but more videos failed than --max-failed allows; "
    "4 the job could not finish (store, lock, disk full, I/O, Ray): fix the cause and rerun, "
    "it resumes from the last committed shard"
)
_DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def exit_code(err: BaseException) -> int:
    from encoders.weights import WeightsNotFoundError  # here: `merv --help` stays fast
    from pipeline.config import ConfigError
    from pipeline.store import StoreError

    if isinstance(err, (ConfigError, WeightsNotFoundError, FileNotFoundError)):
        return USAGE
    if isinstance(err, (StoreError, OSError, RuntimeError)) or _from_ray(err):
        return INCOMPLETE  # RuntimeError: a job step that refused to go on
    return BUG


def one_line(err: BaseException, store: str = "") -> str:
    """``err`` as one line with what to do; ``store``: the job's store, named on an I/O error."""
    if isinstance(err, OSError) and err.errno in _DISK_FULL:
        where = f" writing {err.filename}" if err.filename else ""
        return (
            f"disk full: no space left on the device{where}{f' (store {store})' if store else ''}"
            ": free space "
            "or move the store to a bigger disk, then rerun the same command: it resumes from "
            "the last committed shard"
        )
    if isinstance(err, OSError) and exit_code(err) == INCOMPLETE:
        where = f" ({err.filename})" if err.filename else ""
        return (
            f"I/O error: {err.strerror or err}{where}{f' (store {store})' if store else ''}: fix "
            "the cause, then rerun the same command: it resumes from the last committed shard"
        )
    if exit_code(err) == BUG:
        return (
            f"internal error: {type(err).__name__}: {_first_line(err)} (a bug in merv: rerun "
            "with `merv --debug ...` for the traceback and report it)"
        )
    return root_cause(err)


def report(err: BaseException, debug: bool, store: str = "") -> int:
    """Print ``err`` to stderr (one line; the traceback first with ``debug``); its exit code."""
    if debug:
        traceback.print_exception(err, file=sys.stderr)
    print(f"merv: error: {one_line(err, store)}", file=sys.stderr)
    return exit_code(err)


def _from_ray(err: BaseException) -> bool:
    return type(err).__module__.startswith("ray")


def _first_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return lines[0] if lines else ""


def root_cause(err: BaseException) -> str:
    """One line. Our errors speak for themselves; a Ray worker's error arrives wrapped with the
    remote traceback, whose last line is the worker's own `pkg.SomeError: message`."""
    best, seen = str(err).strip() or type(err).__name__, set()
    while isinstance(err, BaseException) and id(err) not in seen:
        seen.add(id(err))
        lines = [line for line in str(err).strip().splitlines() if line.strip()]
        if lines:
            best = lines[-1]
        if not _from_ray(err):
            break
        err = getattr(err, "cause", None) or err.__cause__  # Ray Data's wrappers are empty
    return re.sub(r"^[\w.]+(Error|Exception): ", "", best)


def failed_verdict(failed: int, processed: int, max_failed: str, store: str) -> int:
    """OK, or TOO_MANY_FAILED (said in one line) when ``failed`` exceeds ``max_failed``."""
    from jobs.config import failed_allowed

    if failed <= failed_allowed(max_failed, processed):
        return OK
    print(
        f"merv: error: {failed} of {processed} videos failed, more than --max-failed "
        f"{max_failed} allows; `merv status {store} --failed` lists them and why, "
        "`merv extract ... --retry-failed` redoes them",
        file=sys.stderr,
    )
    return TOO_MANY_FAILED
