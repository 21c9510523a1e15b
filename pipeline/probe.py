"""What a video file holds, read once with PyAV before any frame is decoded.

One demux pass (no decoding except the first frame) gives the facts decoding must not guess:
the true frame count (decord's count is a duration x fps estimate for some containers, and a
truncated file has fewer packets than its header claims), every frame's presentation time (so
variable frame rate and clip boundaries are handled by timestamps, and AVI or MPEG-PS files,
whose decord timestamps are garbage, still get real ones), the display rotation, the stream's
size and the container format, which decides whether decord can be trusted to seek.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline import failures
from pipeline.failures import DecodeError, one_line

# Containers decord reads but seeks wrongly in (MPEG-PS/TS: right count, wrong frames at sparse
# indices) or cannot open (images, GIF, raw elementary streams): decode these with PyAV.
PYAV_ONLY_FORMATS = frozenset(
    {
        "mpeg",
        "mpegts",
        "mpegvideo",
        "mpeg1video",
        "mpeg2video",
        "gif",
        "image2",
        "webp",
        "apng",
        "h264",
        "hevc",
        "m4v",
        "mjpeg",
        "rawvideo",
    }
)
NOT_VIDEO_FORMATS = frozenset({"tty"})  # ffmpeg renders any .txt/.nfo file as ANSI art "video"
_TEXT_MAGIC = (b"PK\x03\x04", b"%PDF", b"\x7fELF", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")
_FIRST_FRAME_TRIES = 64  # packets fed to the decoder to find the first frame (and its rotation)


class ProbeOpenError(DecodeError):
    """PyAV could not open the container at all (as opposed to opening it and finding no video)."""


@dataclass
class Probe:
    format: str
    width: int
    height: int
    rotation: int  # counter-clockwise degrees the frames must turn to stand upright (0/90/180/270)
    fps: float
    timestamps: np.ndarray  # float64 [n], seconds from the first frame, presentation order

    @property
    def n_frames(self) -> int:
        return int(self.timestamps.size)

    @property
    def decord_safe(self) -> bool:
        """decord ignores rotation (or mangles it) and mis-seeks in the formats above."""
        fmt = set(self.format.split(","))
        return (
            self.rotation == 0
            and not (fmt & PYAV_ONLY_FORMATS)
            and not self.format.endswith("_pipe")
        )


def looks_like_non_media(path: str) -> bool:
    """Text or a well-known non-media binary (zip, pdf, elf, gzip...): not a broken video."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if not head or head.startswith(_TEXT_MAGIC):
        return bool(head)
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(c.isprintable() or c in "\r\n\t" for c in text)


def _rotation(degrees: float | None) -> int:
    if degrees is None:
        return 0
    return int(round(float(degrees) / 90.0)) % 4 * 90


def _fps(stream, timestamps: np.ndarray) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    if timestamps.size > 1 and timestamps[-1] > 0:
        return float((timestamps.size - 1) / timestamps[-1])
    return 0.0


def _demux(container, stream) -> tuple[list[int], float | None]:
    """Every packet's presentation time (pts, else dts, else its number) and the rotation that
    rides on the first decoded frame; a damaged tail ends the pass, not the probe."""
    import av

    times: list[int] = []
    rotation_deg: float | None = None
    first_frame_seen = False
    try:
        for i, packet in enumerate(container.demux(stream)):
            if packet.size <= 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            times.append(stamp if stamp is not None else i)
            if not first_frame_seen and i < _FIRST_FRAME_TRIES:  # rotation rides on frames
                try:
                    for frame in packet.decode():
                        first_frame_seen, rotation_deg = True, frame.rotation
                except av.error.FFmpegError:
                    pass
    except av.error.FFmpegError:
        pass  # truncated or damaged tail: the packets read so far are what exists
    return times, rotation_deg


def probe(path: str) -> Probe:
    """Probe ``path``; raises DecodeError for files that hold no decodable video at all.

    A container PyAV cannot open raises ``corrupt`` (or ``not-video``); the caller may still
    try decord on it, which opens a few oddities newer FFmpeg refuses.
    """
    import av

    try:
        container = av.open(path, metadata_errors="ignore")
    except Exception as err:  # noqa: BLE001 - any open failure: not media, or broken media
        kind = failures.NOT_VIDEO if looks_like_non_media(path) else failures.CORRUPT
        raise ProbeOpenError(kind, f"pyav: {type(err).__name__}: {one_line(err, 160)}") from err
    with container:
        fmt = container.format.name
        if set(fmt.split(",")) & NOT_VIDEO_FORMATS:
            raise DecodeError(
                failures.NOT_VIDEO, f"pyav: read as {fmt!r} (text rendered as frames)"
            )
        if not container.streams.video:
            kinds = sorted({s.type for s in container.streams}) or ["no"]
            raise DecodeError(
                failures.NO_VIDEO_STREAM, f"pyav: {fmt} with {'/'.join(kinds)} streams only"
            )
        stream = container.streams.video[0]
        times, rotation_deg = _demux(container, stream)
        if not times:
            raise DecodeError(failures.NO_FRAMES, f"pyav: {fmt} video stream holds no frames")
        tb = float(stream.time_base) if stream.time_base else 0.0
        stamps = np.sort(np.asarray(times, dtype=np.int64))
        if tb <= 0:  # no time base: frame numbers only
            timestamps = np.arange(stamps.size, dtype=np.float64)
        else:
            timestamps = (stamps - stamps[0]).astype(np.float64) * tb
        fps = _fps(stream, timestamps)
        if tb <= 0 and fps > 0:
            timestamps = timestamps / fps
        return Probe(
            format=fmt,
            width=int(stream.width or 0),
            height=int(stream.height or 0),
            rotation=_rotation(rotation_deg),
            fps=fps,
            timestamps=timestamps,
        )


def decord_probe(path: str) -> Probe:
    """Facts from decord alone, for the rare file PyAV cannot open but decord can."""
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    n = len(reader)
    first = reader[0].shape
    stamps = np.asarray(reader.get_frame_timestamp(list(range(n))))[:, 0].astype(np.float64)
    fps = float(reader.get_avg_fps() or 0.0)
    ok = np.all(np.isfinite(stamps)) and np.all(np.diff(stamps) >= 0) and stamps.min() >= 0
    stamps = stamps - stamps[0] if ok else np.arange(n) / (fps or 1.0)
    return Probe("decord", int(first[1]), int(first[0]), 0, fps, stamps)
