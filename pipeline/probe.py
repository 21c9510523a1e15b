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
# Containers that store decode times only: FFmpeg makes each packet's pts up from its dts, so
# with B-frames the pts do not name frames in presentation order (PyAV's seeking decoder would
# mislabel them, and single-threaded decord returns a neighbour near the end): decode in order.
NO_PTS_FORMATS = frozenset({"avi"})
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
    # Every frame's pts in presentation order (int64 [n], stream time base) where every packet
    # carries a distinct one, else None: what lets a decoder name the frames it gets after a seek.
    pts: np.ndarray | None = None
    keyframes: np.ndarray | None = None  # int64: presentation indices of the keyframes

    @property
    def n_frames(self) -> int:
        return int(self.timestamps.size)

    @property
    def keyframe_interval(self) -> float | None:
        """Median frames between consecutive keyframes (the frame count when there is one):
        up to this many frames a sparse seek decodes to reach one sampled frame."""
        if self.keyframes is None or self.keyframes.size == 0:
            return None
        if self.keyframes.size == 1:
            return float(self.n_frames)
        return float(np.median(np.diff(self.keyframes)))

    @property
    def seekable(self) -> bool:
        """Frames can be sought and named by pts (``pipeline.seek``): every frame has its own
        pts, and the container is not one whose seeks are byte guesses (MPEG-PS/TS, pipes)."""
        fmt = set(self.format.split(","))
        return (
            self.pts is not None
            and not (fmt & (PYAV_ONLY_FORMATS | NO_PTS_FORMATS))
            and not self.format.endswith("_pipe")
        )

    @property
    def decord_safe(self) -> bool:
        """decord ignores rotation (or mangles it) and mis-seeks in the formats above."""
        fmt = set(self.format.split(","))
        return (
            self.rotation == 0
            and not (fmt & (PYAV_ONLY_FORMATS | NO_PTS_FORMATS))
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


@dataclass
class _Packets:
    times: list[int]  # presentation time of each packet: pts, else dts, else its number
    all_pts: bool  # every packet had its own pts
    key_times: list[int]  # times of the keyframe packets


def _demux(container, stream) -> tuple[_Packets, float | None]:
    """Every packet's presentation time and keyframe flag, and the rotation that rides on the
    first decoded frame; a damaged tail ends the pass, not the probe."""
    import av

    times: list[int] = []
    key_times: list[int] = []
    all_pts = True
    rotation_deg: float | None = None
    first_frame_seen = False
    try:
        for i, packet in enumerate(container.demux(stream)):
            if packet.size <= 0:
                continue
            stamp = packet.pts if packet.pts is not None else packet.dts
            stamp = stamp if stamp is not None else i
            all_pts = all_pts and packet.pts is not None
            times.append(stamp)
            if packet.is_keyframe:
                key_times.append(stamp)
            if not first_frame_seen and i < _FIRST_FRAME_TRIES:  # rotation rides on frames
                try:
                    for frame in packet.decode():
                        first_frame_seen, rotation_deg = True, frame.rotation
                except av.error.FFmpegError:
                    pass
    except av.error.FFmpegError:
        pass  # truncated or damaged tail: the packets read so far are what exists
    return _Packets(times, all_pts, key_times), rotation_deg


def _frame_pts(packets: _Packets, stamps: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """The sorted pts (None when some packet had none or two share one: frames could not be
    named by it) and the keyframes' presentation indices."""
    unique = packets.all_pts and bool(np.all(np.diff(stamps) > 0))
    keys = np.searchsorted(stamps, np.asarray(packets.key_times, dtype=np.int64))
    return (stamps if unique else None), np.unique(keys).astype(np.int64)


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
        packets, rotation_deg = _demux(container, stream)
        times = packets.times
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
        pts, keyframes = _frame_pts(packets, stamps)
        return Probe(
            format=fmt,
            width=int(stream.width or 0),
            height=int(stream.height or 0),
            rotation=_rotation(rotation_deg),
            fps=fps,
            timestamps=timestamps,
            pts=pts,
            keyframes=keyframes,
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
    keyframes = np.asarray(reader.get_key_indices(), dtype=np.int64)
    return Probe("decord", int(first[1]), int(first[0]), 0, fps, stamps, None, keyframes)
