"""Crash-injection points for the resume tests.

``MERV_FAULT=<point>:<n>`` kills the current process with SIGKILL the n-th time (1-based) it
reaches ``<point>``; unset (always, outside tests) it costs one dict lookup. SIGKILL, not an
exception: nothing gets to clean up, exactly like an OOM kill or a lost node.
"""

from __future__ import annotations

import os
import signal

_hits: dict[str, int] = {}


def fault_point(point: str) -> None:
    spec = os.environ.get("MERV_FAULT")
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name != point:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(nth or 1):
        os.kill(os.getpid(), signal.SIGKILL)
