"""Poison pills: a video whose decode kills its worker (segfault, OOM kill, SIGKILL) costs that
video, a bounded number of attempts, never the job.

Ray retries a task whose worker died; Ray Data's default is without end, so one video that
crashes its decoder would stall the job forever (or, retries spent, fail it). Instead:

1. the decode stage runs with ``max_retries=0`` and the dataset tolerates errored blocks
   (``DataContext.max_errored_blocks = -1``): a crash drops its block, the job goes on;
2. the driver compares what arrived with what it asked for; the rows that never arrived are
   decoded again, one video per block (so one crash costs one video, not its block's
   neighbours), with ``max_video_retries - 1`` task retries: ``1 + max_video_retries``
   attempts per video in all;
3. the rows still missing are recorded as failed, ``worker-crash: ...``, like any failure.

Chosen over a child process per decode because it needs no extra process, copy of the frames
or fork inside a threaded Ray worker on the hot path; it costs only when a crash happens (a
second, small dataset with its own encoder actors).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pyarrow as pa
import pyarrow.compute as pc

from pipeline import failures
from pipeline.faults import ENV as FAULT_ENV
from pipeline.rows import FAILED, TIMING_COLUMNS

# run_pass(rows, rows_per_block, task_retries) -> the row numbers that came back
RunPass = Callable[[pa.Table, int, int], set[int]]


def decode_task_options(task_retries: int) -> dict:
    """Ray task options of the decode stage: bounded retries, and ``MERV_FAULT`` forwarded to
    the workers when the driver has it set (tests inject faults into decode that way)."""
    options: dict = {"max_retries": task_retries}
    if fault := os.environ.get(FAULT_ENV):
        options["runtime_env"] = {"env_vars": {FAULT_ENV: fault}}
    return options


def missing_rows(todo: pa.Table, got: set[int]) -> pa.Table:
    """The rows of ``todo`` whose row number is not in ``got``."""
    arrived = pa.array(sorted(got), todo.column("row").type)
    return todo.filter(pc.invert(pc.is_in(todo.column("row"), value_set=arrived)))


def crash_row(row: dict, attempts: int) -> dict:
    """A work row whose worker died on every attempt: failed ``worker-crash``, never decoded."""
    return {
        **row,
        "extra": json.loads(row["extra"]),
        "status": FAILED,
        **dict.fromkeys(TIMING_COLUMNS, 0.0),
        "error": (
            f"{failures.WORKER_CRASH}: its worker died (signal, OOM kill or exit) or failed in "
            f"each of {attempts} attempts; see the Ray worker logs"
        ),
    }


def decode_with_retries(
    todo: pa.Table, max_video_retries: int, run_pass: RunPass, record: Callable[[dict], None]
) -> int:
    """Run ``todo`` through ``run_pass``, redo the rows that never came back one per block,
    and ``record`` a ``worker-crash`` row for each still missing; how many there were."""
    missing = missing_rows(todo, run_pass(todo, 0, 0))
    attempts = 1
    if missing.num_rows and max_video_retries > 0:
        missing = missing_rows(missing, run_pass(missing, 1, max_video_retries - 1))
        attempts += max_video_retries
    for row in missing.to_pylist():
        record(crash_row(row, attempts))
    return missing.num_rows
