"""Decode the sampled frames of one video, once for every encoder.

decord is tried first (fast random access); its multithreaded decoder fails on some streams
that a single-threaded reader handles, so that is the second try; PyAV is the last resort.
Every failure ends as a ``DecodeError`` whose message is one line naming each backend's reason,
so the caller can record it in the manifest and move on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from pipeline.sampling import NUM_SAMPLED_FRAMES, sample_indices

log = logging.getLogger(__name__)


class DecodeError(RuntimeError):
    """A video could not be decoded; ``str(err)`` is a one-line reason for the manifest."""


@dataclass
class DecodedVideo:
    frames: np.ndarray  # uint8 [num_frames, H, W, 3], RGB
    indices: np.ndarray  # int64 [num_frames], frame numbers in the source
    timestamps: np.ndarray  # float64 [num_frames], seconds
    n_frames: int
    fps: float
    duration: float
    backend: str

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def _one_line(err: BaseException, limit: int = 200) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _decode_decord(path: str, num_frames: int, num_threads: int) -> DecodedVideo:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=num_threads)
    n = len(reader)
    if n < 1:
        raise DecodeError("no video frames")
    indices = sample_indices(n, num_frames)
    frames = reader.get_batch(list(indices)).asnumpy()
    timestamps = np.asarray(reader.get_frame_timestamp(list(indices)))[:, 0].astype(np.float64)
    fps = float(reader.get_avg_fps() or 0.0)
    duration = n / fps if fps > 0 else float(timestamps[-1])
    backend = "decord" if num_threads != 1 else "decord-1thread"
    return DecodedVideo(frames, indices, timestamps, n, fps, duration, backend)


def _count_packets(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size > 0)


def _decode_pyav(path: str, num_frames: int) -> DecodedVideo:
    import av

    with av.open(path) as container:
        if not container.streams.video:
            raise DecodeError("no video stream")
        stream = container.streams.video[0]
        n = int(stream.frames or 0) or _count_packets(path)
        fps = float(stream.average_rate or 0.0)
    if n < 1:
        raise DecodeError("no video frames")
    for _ in range(2):  # a second pass when the header over-counts (truncated files)
        indices = sample_indices(n, num_frames)
        wanted = set(int(i) for i in indices)
        kept: dict[int, tuple[np.ndarray, float]] = {}
        decoded = 0
        with av.open(path) as container:
            stream = container.streams.video[0]
            for i, frame in enumerate(container.decode(stream)):
                decoded = i + 1
                if i in wanted:
                    ts = float(frame.time) if frame.time is not None else i / (fps or 1.0)
                    kept[i] = (frame.to_ndarray(format="rgb24"), ts)
                if i >= indices[-1]:
                    break
        if all(int(i) in kept for i in indices):
            frames = np.stack([kept[int(i)][0] for i in indices])
            timestamps = np.array([kept[int(i)][1] for i in indices], dtype=np.float64)
            duration = n / fps if fps > 0 else float(timestamps[-1])
            return DecodedVideo(frames, indices, timestamps, n, fps, duration, "pyav")
        if decoded < 1:
            raise DecodeError("no decodable video frames")
        n = decoded
    raise DecodeError(f"frame count unstable after re-count ({n} frames decoded)")


def decode_video(path: str, num_frames: int = NUM_SAMPLED_FRAMES) -> DecodedVideo:
    """Decode the ``num_frames`` sampled frames of the video at local ``path``."""
    reasons = []
    attempts = (
        ("decord", lambda: _decode_decord(path, num_frames, num_threads=0)),
        ("decord-1thread", lambda: _decode_decord(path, num_frames, num_threads=1)),
        ("pyav", lambda: _decode_pyav(path, num_frames)),
    )
    for name, attempt in attempts:
        try:
            return attempt()
        except Exception as err:  # noqa: BLE001 - every backend error becomes a reason
            log.debug("%s failed on %s: %s", name, path, err)
            reasons.append(f"{name}: {_one_line(err)}")
    raise DecodeError("; ".join(reasons))
