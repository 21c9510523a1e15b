"""Ray's own console output goes to a log file; the console keeps merv's progress, summary and
errors.

While a job uses Ray, its driver prints lines of its own: C++ core-worker messages written
straight to file descriptor 2, deprecation warnings, and its Python loggers. They matter when
debugging a cluster, not in the middle of a progress bar. Inside ``ray_output_to(path)`` file
descriptor 2 and ``sys.stderr`` are the log file, and the console (the real stderr) is handed to
the caller for the progress bar and merv's own messages. Everything is restored on the way out,
so an error after the job is printed on the console as usual.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import TextIO

import fsspec

from pipeline.store.layout import JOBS_DIR


def ray_log_path(store_url: str) -> str:
    """Where this job's Ray log goes: the store's ``_jobs/`` when the store is a local folder,
    else a local temporary file (copied into the store's ``_jobs/`` at the end)."""
    name = f"ray-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-{os.getpid()}.log"
    fs, root = fsspec.core.url_to_fs(store_url)
    if "file" in fs.protocol:
        return os.path.join(root, JOBS_DIR, name)
    return os.path.join(tempfile.gettempdir(), f"merv-{name}")


@contextlib.contextmanager
def ray_output_to(path: str) -> Iterator[TextIO]:
    """Within: fd 2 and ``sys.stderr`` write to ``path``; yields the console (the real stderr)."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    sys.stderr.flush()
    log = open(path, "a", buffering=1)  # noqa: SIM115 - closed below, after fd 2 is restored
    saved_fd = os.dup(2)
    console = os.fdopen(os.dup(saved_fd), "w", buffering=1)
    saved_stderr = sys.stderr
    os.dup2(log.fileno(), 2)
    sys.stderr = log
    try:
        yield console
    finally:
        with contextlib.suppress(Exception):
            log.flush()
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        sys.stderr = saved_stderr
        console.close()
        log.close()
