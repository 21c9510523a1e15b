"""Frame sampling exactly as the MERV reference does it.

One decode per video feeds every encoder: 32 indices from ``numpy.linspace(0, n - 1, 32)``
truncated to int (endpoints included, repeated indices when the clip is short). ViViT takes all
32; every 16-frame encoder takes every second one (sampled frames 0, 2, ..., 30; the encoder's
``frame_stride``, see ``encoders.spec``).

Clips (``start``/``end`` seconds from a manifest) select frames by their presentation
timestamps, not by ``index / fps``, so variable-frame-rate videos cut where the user asked; the
same rule then samples inside the clip as if it were a whole video.
"""

from __future__ import annotations

import numpy as np

NUM_SAMPLED_FRAMES = 32
_EPS = 1e-6  # timestamps computed from integer pts: tolerate float rounding at the boundary


def sample_indices(n_frames: int, num: int = NUM_SAMPLED_FRAMES) -> np.ndarray:
    """Frame indices to decode for a video of ``n_frames`` frames (int64, length ``num``)."""
    if n_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {n_frames} frames")
    # astype(int) truncates towards zero, which is what the reference's int() cast does.
    return np.linspace(0, n_frames - 1, num).astype(np.int64)


def clip_range(timestamps: np.ndarray, start: float | None, end: float | None) -> tuple[int, int]:
    """Frames ``[first, stop)`` whose timestamps lie in ``[start, end)`` seconds.

    ``timestamps`` are ascending seconds from the first frame; ``None`` (or NaN) bounds mean the
    start or end of the video. Half-open, so back-to-back clips never share a frame.
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    first, stop = 0, int(ts.size)
    if start is not None and not np.isnan(start):
        first = int(np.searchsorted(ts, start - _EPS, side="left"))
    if end is not None and not np.isnan(end):
        stop = int(np.searchsorted(ts, end - _EPS, side="left"))
    return first, max(first, stop)
