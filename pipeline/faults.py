"""Crash-injection points for the resume and poison-pill tests.

``MERV_FAULT=<point>:<n>`` kills the current process with SIGKILL the n-th time (1-based) it
reaches ``<point>``; a keyed point (``fault_point("decode_video", key=video_id)``) is killed by
``MERV_FAULT=<point>:<key>`` every time it is reached with that key, like a poison-pill video
that crashes every worker that decodes it. Unset (always, outside tests) it costs one dict
lookup. SIGKILL, not an exception: nothing gets to clean up, exactly like an OOM kill or a lost
node.
"""

from __future__ import annotations

import os
import signal

ENV = "MERV_FAULT"
_hits: dict[str, int] = {}


def fault_point(point: str, key: str | None = None) -> None:
    spec = os.environ.get(ENV)
    if not spec:
        return
    name, _, arg = spec.partition(":")
    if name != point:
        return
    if key is not None:
        if arg == key:
            os.kill(os.getpid(), signal.SIGKILL)
        return
    _hits[point] = _hits.get(point, 0) + 1
    if _hits[point] == int(arg or 1):
        os.kill(os.getpid(), signal.SIGKILL)
