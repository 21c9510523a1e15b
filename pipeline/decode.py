"""Decode the sampled frames of one video (or one clip of it), once for every encoder.

Order of work, each step there because a cheaper one can lie:

1. fetch: a remote source or tar member becomes a local temporary file (``pipeline.fetch``);
2. probe: one PyAV demux pass gives the true frame count, every frame's timestamp, the rotation
   and the container format (``pipeline.probe``);
3. decode: GOP-aware sparse seeking with PyAV first (``pipeline.seek``: one seek per group of
   pictures, unneeded non-reference frames dropped), then decord (single-threaded again where
   more threads failed), and PyAV in order (``pipeline.in_order``, exact) last. decord is
   skipped where it is known to return wrong frames: rotated streams, MPEG-PS/TS and AVI. A
   result whose frame count disagrees with the probe is rejected, not trusted;
4. upright and sized: frames are turned by the display rotation and leave the decoder at the
   size the job's ``DecodeSettings`` asks (``pipeline.decode_settings``: exact = as coded up to
   1080p, fast = the encoders' size); the manifest records the keyframe interval seen and the
   frames the decoder had to produce.

Truncated or damaged files keep the frames that decode when that is at least half of them
(noted in ``note``); otherwise they fail. Every failure is a ``DecodeError`` whose one-line
message starts with its class (``pipeline.failures``) followed by each decoder's reason.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from pipeline import failures
from pipeline.decode_settings import INTERPOLATION, DecodeSettings
from pipeline.failures import DecodeError, one_line
from pipeline.fetch import open_local
from pipeline.in_order import Plan, decode_in_order
from pipeline.probe import Probe, ProbeOpenError, decord_probe, probe
from pipeline.sampling import NUM_SAMPLED_FRAMES, clip_range, sample_indices
from pipeline.seek import decode_sparse

if TYPE_CHECKING:
    from pipeline.sources.item import TarMember

__all__ = ["DecodeError", "DecodedVideo", "decode_video"]
log = logging.getLogger(__name__)

DECODERS = ("pyav-seek", "decord", "decord-1thread", "pyav")  # tried in this order


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
    keyframe_interval: float | None = None  # median frames between keyframes
    frames_decoded: int | None = None  # frames the decoder produced (None: decord, not counted)

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def _plan(
    info: Probe, num_frames: int, start: float | None, end: float | None, how: DecodeSettings
) -> Plan:
    first, stop = clip_range(info.timestamps, start, end)
    if stop <= first:
        span = f"{info.timestamps[0]:.3f}..{info.timestamps[-1]:.3f}"
        raise DecodeError(
            failures.NO_FRAMES, f"clip [{start}, {end}) s holds no frame; frames span {span} s"
        )
    indices = first + sample_indices(stop - first, num_frames)
    size = how.frame_size(info.width, info.height)
    return Plan(info.n_frames, first, stop, indices, size, how.threads)


def _decode_decord(path: str, plan: Plan, threads: int) -> np.ndarray:
    import decord

    size = {"width": plan.size[0], "height": plan.size[1]} if plan.size else {}
    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=threads, **size)
    if len(reader) != plan.n_total:  # decord's estimate vs the packets really there
        raise RuntimeError(f"counts {len(reader)} frames, the container holds {plan.n_total}")
    return reader.get_batch([int(i) for i in plan.indices]).asnumpy()


def _decode_sparse(path: str, plan: Plan, info: Probe) -> tuple[np.ndarray, int]:
    got = decode_sparse(path, info, plan.indices, plan.size, plan.threads, INTERPOLATION)
    missing = [int(i) for i in plan.indices if int(i) not in got.frames]
    if missing:
        raise RuntimeError(
            f"{len(set(missing))} sampled frame(s) did not decode, first {missing[0]}"
        )
    return np.stack([got.frames[int(i)] for i in plan.indices]), got.decoded


def _finish(
    frames: np.ndarray,
    plan: Plan,
    info: Probe,
    decoder: str,
    note: str | None,
    decoded: int | None = None,
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
        info.keyframe_interval,
        decoded,
    )


def _check(frames: np.ndarray, plan: Plan, info: Probe) -> np.ndarray:
    w, h = plan.size or (info.width, info.height)
    expected = (plan.indices.size, h, w, 3)
    if frames.shape != expected:
        raise RuntimeError(f"frames {frames.shape}, expected {expected}")
    return frames


def _decord_only(path: str, size: int, err: ProbeOpenError, plan_for) -> DecodedVideo:
    """A file PyAV cannot open: decord (single-threaded) gets its try."""
    reasons = [err.detail]
    try:
        info = decord_probe(path)
    except Exception as derr:  # noqa: BLE001
        reasons.append(_reason("decord", derr))
        raise DecodeError(failures.EMPTY if size == 0 else err.kind, "; ".join(reasons)) from derr
    plan = plan_for(info)
    try:
        frames = _check(_decode_decord(path, plan, 1), plan, info)
    except Exception as derr:  # noqa: BLE001
        reasons.append(_reason("decord", derr))
        raise DecodeError(err.kind, "; ".join(reasons)) from derr
    return _finish(frames, plan, info, "decord-1thread", "pyav could not open the file")


def _decode_with(name: str, path: str, plan: Plan, info: Probe) -> DecodedVideo:
    if name == "pyav-seek":
        frames, decoded = _decode_sparse(path, plan, info)
        return _finish(_check(frames, plan, info), plan, info, name, None, decoded)
    if name == "pyav":
        frames, used, note, decoded = decode_in_order(path, plan)
        return _finish(_check(frames, used, info), used, info, name, note, decoded)
    frames = _decode_decord(path, plan, threads=plan.threads if name == "decord" else 1)
    return _finish(_check(frames, plan, info), plan, info, name, None)


def _applies(name: str, info: Probe, threads: int) -> bool:
    if name == "pyav-seek":
        return info.seekable
    if name.startswith("decord") and not info.decord_safe:
        return False
    return not (name == "decord-1thread" and threads == 1)  # "decord" was just that


def _decode_file(
    path: str,
    size: int,
    num_frames: int,
    start: float | None,
    end: float | None,
    how: DecodeSettings,
    decoders: tuple[str, ...],
) -> DecodedVideo:
    try:
        info = probe(path)
    except ProbeOpenError as err:  # PyAV cannot open it: decord still gets its try
        return _decord_only(path, size, err, lambda i: _plan(i, num_frames, start, end, how))
    plan = _plan(info, num_frames, start, end, how)
    reasons: list[str] = []
    for name in decoders:
        if not _applies(name, info, how.threads):
            continue
        try:
            return _decode_with(name, path, plan, info)
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
    settings: DecodeSettings | None = None,
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
        settings: the decode mode (exact or fast), its frame size and decoder threads
            (``pipeline.decode_settings``; default exact, one thread).
        decoders: the decoders to try, in order (a subset of ``DECODERS``).

    Returns:
        The frames (uint8, upright), their source frame numbers and timestamps, and what
        decoding found and cost (``DecodedVideo``).

    Raises:
        DecodeError: whenever no frames come out; ``str(err)`` is one line that starts with
            its class (``pipeline.failures``: missing, unreachable, corrupt, no-frames, ...).
    """
    how = settings or DecodeSettings()
    with open_local(source, storage_options, member) as (path, size):
        return _decode_file(path, size, num_frames, start, end, how, decoders)
