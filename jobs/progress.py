"""The extract job's progress on the console: a tqdm bar on a terminal, else (``ray job logs``,
a scheduler's log file) one plain line every ``interval_s`` and a last one at the end, instead
of a bar redrawn with carriage returns."""

from __future__ import annotations

import time
from typing import TextIO


class LineProgress:
    """tqdm's ``update``/``set_postfix``/``close``, written as whole lines."""

    def __init__(self, total: int, file: TextIO, interval_s: float = 10.0):
        self.total, self.file, self.interval_s = total, file, interval_s
        self.n, self.failed = 0, 0
        self._start = self._last = time.perf_counter()

    def update(self, n: int) -> None:
        self.n += n
        if time.perf_counter() - self._last >= self.interval_s:
            self._line()

    def set_postfix(self, failed: int = 0) -> None:
        self.failed = failed

    def close(self) -> None:
        self._line()

    def _line(self) -> None:
        self._last = now = time.perf_counter()
        rate = self.n / (now - self._start) if now > self._start else 0.0
        share = 100 * self.n / self.total if self.total else 100.0
        print(
            f"extract: {self.n}/{self.total} videos ({share:.0f}%), {self.failed} failed, "
            f"{rate:.2f} videos/s",
            file=self.file,
            flush=True,
        )


def progress_bar(total: int, enabled: bool, console: TextIO):
    """A bar on ``console`` when it is a terminal, plain lines when it is not, nothing when
    ``enabled`` is False."""
    from tqdm import tqdm

    if enabled and not console.isatty():
        return LineProgress(total, console)
    return tqdm(
        total=total, unit="video", desc="extract", disable=not enabled, smoothing=0.1, file=console
    )
