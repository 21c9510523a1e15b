"""Decode the sampled frames of one video (or one clip of it), once for every encoder.

Order of work, each step there because a cheaper one can lie:

1. fetch: a remote source or tar member becomes a local temporary file (``pipeline.fetch``);
2. probe: one PyAV demux pass gives the true frame count, every frame's timestamp, the rotation
   and the container format (``pipeline.probe``);
3. decode: decord first (fast sparse seeks), single-threaded decord where its threaded decoder
   fails, PyAV (sequential, exact) last. decord is skipped where it is known to return wrong
   frames: rotated streams and MPEG-PS/TS. A result whose frame count disagrees with the probe
   is rejected, not trusted;
4. upright and bounded: frames are turned by the display rotation, and very large frames are
   shrunk *while decoding* (short side <= 1080, long side <= 3840 by default), so one video's
   32 frames stay under ~400 MB. Everything up to 1080p decodes at full size, pixel for pixel
   what the reference sees; larger inputs record their source size in the manifest.

Truncated or damaged files keep the frames that decode when that is at least half of them
(noted in ``note``); otherwise they fail. Every failure is a ``DecodeError`` whose one-line
message starts with its class (``pipeline.failures``) followed by each decoder's reason.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline import failures
from pipeline.failures import DecodeError, one_line
from pipeline.fetch import open_local
from pipeline.probe import Probe, ProbeOpenError, decord_probe, probe
from pipeline.sampling import NUM_SAMPLED_FRAMES, clip_range, sample_indices

if TYPE_CHECKING:
    from pipeline.sources.item import TarMember

__all__ = ["DecodeError", "DecodedVideo", "decode_video"]
log = logging.getLogger(__name__)

MAX_SHORT_SIDE = 1080
MAX_LONG_SIDE = 3840
MAX_SOURCE_PIXELS = 16384 * 16384  # beyond this even one decoded frame is unreasonable
SALVAGE_MIN_FRACTION = 0.5
DECODERS = ("decord", "decord-1thread", "pyav")  # tried in this order


_DECORD_NOISE = re.compile(r"\[\d\d:\d\d:\d\d\] \S+?:\d+: |Stack trace.*")


def _reason(name: str, err: BaseException) -> str:
    """``decoder: message`` without decord's timestamp and source-file prefixes."""
    text = _DECORD_NOISE.sub("", str(getattr(err, "detail", err))) or type(err).__name__
    return f"{name}: {one_line(text, 160)}"


@dataclass
class DecodedVideo:
    frames: np.ndarray  # uint8 [num_frames, H, W, 3], RGB, upright
    indices: np.ndarray  # int64 [num_frames], frame numbers in the source (presentation order)
    timestamps: np.ndarray  # float64 [num_frames], seconds from the source's first frame
    n_frames: int  # frames in the decoded range: the whole video, or the clip
    fps: float
    duration: float  # seconds covered by the decoded range
    decoder: str  # which of DECODERS gave the frames
    source_height: int = 0  # coded size before any resize or rotation
    source_width: int = 0
    rotation: int = 0  # counter-clockwise degrees applied to stand the frames upright
    note: str | None = None  # salvage or resize remark for the manifest

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


@dataclass(frozen=True)
class _Plan:
    n_total: int  # frames in the file (what a decoder must agree with)
    first: int  # clip range [first, stop) in source frame numbers
    stop: int
    indices: np.ndarray  # absolute frame numbers to decode
    size: tuple[int, int] | None  # (width, height) to decode at, None = as coded


def _decode_size(w: int, h: int, max_short: int, max_long: int) -> tuple[int, int] | None:
    if w <= 0 or h <= 0:
        return None
    if w * h > MAX_SOURCE_PIXELS:
        raise DecodeError(failures.TOO_LARGE, f"frames are {w}x{h}")
    scale = min(1.0, max_short / min(w, h), max_long / max(w, h))
    if scale >= 1.0:
        return None
    return 2 * max(1, round(w * scale / 2)), 2 * max(1, round(h * scale / 2))


def _plan(
    info: Probe, num_frames: int, start: float | None, end: float | None, caps: tuple[int, int]
) -> _Plan:
    first, stop = clip_range(info.timestamps, start, end)
    if stop <= first:
        span = f"{info.timestamps[0]:.3f}..{info.timestamps[-1]:.3f}"
        raise DecodeError(
            failures.NO_FRAMES, f"clip [{start}, {end}) s holds no frame; frames span {span} s"
        )
    indices = first + sample_indices(stop - first, num_frames)
    return _Plan(info.n_frames, first, stop, indices, _decode_size(info.width, info.height, *caps))


def _decode_decord(path: str, plan: _Plan, threads: int) -> np.ndarray:
    import decord

    size = {"width": plan.size[0], "height": plan.size[1]} if plan.size else {}
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads, **size)
    if len(reader) != plan.n_total:  # decord's estimate vs the packets really there
        raise RuntimeError(f"counts {len(reader)} frames, the container holds {plan.n_total}")
    return reader.get_batch([int(i) for i in plan.indices]).asnumpy()


def _pyav_pass(path: str, plan: _Plan) -> tuple[dict[int, np.ndarray], int, str | None]:
    """Decode in order up to the last wanted frame; stop at the first error (kept frames, frames
    decoded, error text)."""
    import av

    wanted, last = set(int(i) for i in plan.indices), int(plan.indices.max())
    kept: dict[int, np.ndarray] = {}
    size = (
        {"width": plan.size[0], "height": plan.size[1], "interpolation": "AREA"}
        if plan.size
        else {}
    )
    count = 0
    try:
        with av.open(path, metadata_errors="ignore") as container:
            stream = container.streams.video[0]
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


def _decode_pyav(path: str, plan: _Plan) -> tuple[np.ndarray, _Plan, str | None]:
    kept, count, err = _pyav_pass(path, plan)
    if all(int(i) in kept for i in plan.indices):
        return np.stack([kept[int(i)] for i in plan.indices]), plan, None
    # Fewer frames decode than the container holds (truncated, damaged): salvage the prefix
    # when it is most of the range, resampled over what exists; never pad with made-up frames.
    want = plan.stop - plan.first
    have = max(0, min(plan.stop, count) - plan.first)
    if have < max(1, math.ceil(SALVAGE_MIN_FRACTION * want)):
        raise DecodeError(
            failures.UNDECODABLE, f"only {have} of {want} frames decode ({err or 'EOF'})"
        )
    indices = plan.first + sample_indices(have, plan.indices.size)
    salvaged = _Plan(plan.n_total, plan.first, plan.first + have, indices, plan.size)
    kept, _, _ = _pyav_pass(path, salvaged)
    if not all(int(i) in kept for i in indices):
        raise DecodeError(
            failures.UNDECODABLE, f"frame count unstable between passes ({err or 'EOF'})"
        )
    note = f"salvaged {have} of {want} frames ({err or 'early end of stream'})"
    return np.stack([kept[int(i)] for i in indices]), salvaged, note


def _finish(
    frames: np.ndarray, plan: _Plan, info: Probe, decoder: str, note: str | None
) -> DecodedVideo:
    k = info.rotation // 90
    if k:
        frames = np.ascontiguousarray(np.rot90(frames, k=k, axes=(1, 2)))
    stamps = info.timestamps
    t = stamps[plan.indices]
    span = float(stamps[plan.stop - 1] - stamps[plan.first])
    duration = span + (1.0 / info.fps if info.fps > 0 else 0.0)
    if plan.size:
        note = "; ".join(filter(None, [note, f"resized from {info.width}x{info.height}"]))
    return DecodedVideo(
        frames,
        plan.indices.astype(np.int64),
        t.astype(np.float64),
        plan.stop - plan.first,
        info.fps,
        duration,
        decoder,
        info.height,
        info.width,
        info.rotation,
        note,
    )


def _check(frames: np.ndarray, plan: _Plan, info: Probe) -> np.ndarray:
    w, h = plan.size or (info.width, info.height)
    expected = (plan.indices.size, h, w, 3)
    if frames.shape != expected:
        raise RuntimeError(f"frames {frames.shape}, expected {expected}")
    return frames


def _decode_file(
    path: str,
    size: int,
    num_frames: int,
    start: float | None,
    end: float | None,
    caps: tuple[int, int],
    decoders: tuple[str, ...],
) -> DecodedVideo:
    reasons: list[str] = []
    try:
        info = probe(path)
    except ProbeOpenError as err:  # PyAV cannot open it: decord still gets its try
        reasons.append(err.detail)
        try:
            info = decord_probe(path)
        except Exception as derr:  # noqa: BLE001
            reasons.append(_reason("decord", derr))
            raise DecodeError(
                failures.EMPTY if size == 0 else err.kind, "; ".join(reasons)
            ) from derr
        plan = _plan(info, num_frames, start, end, caps)
        try:
            frames = _check(_decode_decord(path, plan, 1), plan, info)
        except Exception as derr:  # noqa: BLE001
            reasons.append(_reason("decord", derr))
            raise DecodeError(err.kind, "; ".join(reasons)) from derr
        return _finish(frames, plan, info, "decord-1thread", "pyav could not open the file")
    plan = _plan(info, num_frames, start, end, caps)
    for name in decoders:
        if name.startswith("decord") and not info.decord_safe:
            continue
        try:
            if name == "pyav":
                frames, used, note = _decode_pyav(path, plan)
                return _finish(_check(frames, used, info), used, info, name, note)
            frames = _decode_decord(path, plan, threads=0 if name == "decord" else 1)
            return _finish(_check(frames, plan, info), plan, info, name, None)
        except Exception as err:  # noqa: BLE001 - every decoder's error becomes a reason
            log.debug("%s failed on %s: %s", name, path, err)
            reasons.append(_reason(name, err))
    raise DecodeError(failures.UNDECODABLE, "; ".join(reasons) or "no decoder applies")


def decode_video(
    source: str,
    num_frames: int = NUM_SAMPLED_FRAMES,
    *,
    start: float | None = None,
    end: float | None = None,
    storage_options: dict | None = None,
    member: TarMember | None = None,
    max_short_side: int = MAX_SHORT_SIDE,
    max_long_side: int = MAX_LONG_SIDE,
    decoders: tuple[str, ...] = DECODERS,
) -> DecodedVideo:
    """Decode the ``num_frames`` sampled frames of ``source``, or of its clip [start, end).

    Args:
        source: a local path, an fsspec URL, or a ``tar://member::shard`` URL.
        num_frames: how many frames to sample (the reference's ``linspace`` rule).
        start, end: clip bounds in seconds (None = the start or end of the video); frames are
            chosen by their timestamps.
        storage_options: fsspec options for a URL or a tar member's shard.
        member: a WebDataset member's byte range in its shard: one ranged read instead of
            fsspec's tar scan.
        max_short_side, max_long_side: larger frames are shrunk while decoding.
        decoders: the decoders to try, in order (a subset of ``DECODERS``).

    Returns:
        The frames (uint8, upright), their source frame numbers and timestamps, and what
        decoding found (``DecodedVideo``).

    Raises:
        DecodeError: whenever no frames come out; ``str(err)`` is one line that starts with
            its class (``pipeline.failures``: missing, unreachable, corrupt, no-frames, ...).
    """
    with open_local(source, storage_options, member) as (path, size):
        return _decode_file(
            path, size, num_frames, start, end, (max_short_side, max_long_side), decoders
        )
