"""Decode in presentation order with PyAV: the exact fallback of the decoder chain, and the
salvage of damaged files.

FFmpeg's own order is the ground truth every other decoder is checked against: frame ``i`` is
the ``i``-th frame the decoder gives. A file that decodes fewer frames than the container holds
(truncated, damaged) keeps the frames that decode when that is at least half of the wanted
range, resampled over what exists; it never pads with made-up frames.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from pipeline import failures
from pipeline.decode_settings import INTERPOLATION
from pipeline.failures import DecodeError, one_line
from pipeline.sampling import sample_indices

SALVAGE_MIN_FRACTION = 0.5


@dataclass(frozen=True)
class Plan:
    n_total: int  # frames in the file (what a decoder must agree with)
    first: int  # clip range [first, stop) in source frame numbers
    stop: int
    indices: np.ndarray  # absolute frame numbers to decode
    size: tuple[int, int] | None  # (width, height) to decode at, None = as coded
    threads: int = 1  # decoder threads


def pyav_pass(path: str, plan: Plan) -> tuple[dict[int, np.ndarray], int, str | None]:
    """Decode in order up to the last wanted frame; stop at the first error (kept frames, frames
    decoded, error text)."""
    import av

    wanted, last = set(int(i) for i in plan.indices), int(plan.indices.max())
    kept: dict[int, np.ndarray] = {}
    size = (
        {"width": plan.size[0], "height": plan.size[1], "interpolation": INTERPOLATION}
        if plan.size
        else {}
    )
    count = 0
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
            stream.thread_count = plan.threads
            if plan.threads != 1:
                stream.thread_type = "AUTO"
            for frame in container.decode(stream):
                if count in wanted:
                    kept[count] = frame.to_ndarray(format="rgb24", **size)
                count += 1
                if count > last:
                    break
    except (av.error.FFmpegError, OSError) as err:
        return kept, count, f"{type(err).__name__}: {one_line(err, 120)}"
    return kept, count, None


def decode_in_order(path: str, plan: Plan) -> tuple[np.ndarray, Plan, str | None, int]:
    kept, count, err = pyav_pass(path, plan)
    if all(int(i) in kept for i in plan.indices):
        return np.stack([kept[int(i)] for i in plan.indices]), plan, None, count
    # Fewer frames decode than the container holds (truncated, damaged): salvage the prefix
    # when it is most of the range, resampled over what exists; never pad with made-up frames.
    want = plan.stop - plan.first
    have = max(0, min(plan.stop, count) - plan.first)
    if have < max(1, math.ceil(SALVAGE_MIN_FRACTION * want)):
        raise DecodeError(
            failures.UNDECODABLE, f"only {have} of {want} frames decode ({err or 'EOF'})"
        )
    indices = plan.first + sample_indices(have, plan.indices.size)
    salvaged = Plan(plan.n_total, plan.first, plan.first + have, indices, plan.size, plan.threads)
    kept, again, _ = pyav_pass(path, salvaged)
    if not all(int(i) in kept for i in indices):
        raise DecodeError(
            failures.UNDECODABLE, f"frame count unstable between passes ({err or 'EOF'})"
        )
    note = f"salvaged {have} of {want} frames ({err or 'early end of stream'})"
    return np.stack([kept[int(i)] for i in indices]), salvaged, note, count + again
