"""A bad-input zoo, generated with PyAV (no ffmpeg binary): one file per kind of trouble.

Each entry knows the one status (and failure class) extraction must give it, so a test can
assert every row. Used by tests/pipeline (decode level) and tests/jobs/test_inputs_e2e.py
(through the whole job, via a CSV manifest).
"""

from __future__ import annotations

import contextlib
import fractions
import io
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from tests.helpers import noise_frames as frames

FPS = 16


@dataclass(frozen=True)
class ZooEntry:
    video_id: str
    path: str  # as written in the manifest (local path or URL; "" for none)
    status: str  # "ok" or "failed"
    reason: str | None = None  # failure class token
    start: float | None = None
    end: float | None = None


def write_clip(
    path: str,
    clip: np.ndarray,
    codec: str = "libx264",
    fps: int = FPS,
    pix_fmt: str = "yuv420p",
    options: dict | None = None,
    container_options: dict | None = None,
    pts_ms: list[int] | None = None,
) -> str:
    """Encode RGB frames; ``pts_ms`` gives each frame's time in ms (variable frame rate)."""
    import av

    with av.open(path, "w", options=container_options or {}) as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = clip.shape[1], clip.shape[2]
        stream.pix_fmt = pix_fmt
        if options:
            stream.options = options
        if pts_ms is not None:
            stream.time_base = stream.codec_context.time_base = fractions.Fraction(1, 1000)
        for i, image in enumerate(clip):
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            if pts_ms is not None:
                frame.pts, frame.time_base = pts_ms[i], fractions.Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def lossless(path: str, clip: np.ndarray, fps: int = FPS) -> str:
    """x264 at qp 0: decoded pixels depend on the frame alone, so cut and whole files agree."""
    return write_clip(
        path, clip, fps=fps, pix_fmt="yuv444p", options={"qp": "0", "preset": "ultrafast"}
    )


def remux_rotated(src: str, dst: str, clockwise: int = 90) -> str:
    """Same packets, plus a display matrix asking players to turn the picture ``clockwise``."""
    import av

    with av.open(src) as inp, av.open(dst, "w") as out:
        stream = inp.streams.video[0]
        ostream = out.add_stream_from_template(stream)
        ostream.set_display_rotation(-clockwise)  # PyAV takes counter-clockwise degrees
        for packet in inp.demux(stream):
            if packet.dts is None:
                continue
            packet.stream = ostream
            out.mux(packet)
    return dst


def _audio_only(path: str, with_empty_video: bool) -> str:
    import av

    with av.open(path, "w") as container:
        if with_empty_video:  # a declared video stream that never gets a packet
            video = container.add_stream("mpeg4", rate=FPS)
            video.width, video.height, video.pix_fmt = 64, 48, "yuv420p"
        audio = container.add_stream("aac", rate=44100)
        for i in range(5):
            frame = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            frame.sample_rate, frame.pts = 44100, i * 1024
            for packet in audio.encode(frame):
                container.mux(packet)
        for packet in audio.encode():
            container.mux(packet)
    return path


def _cut(src: str, dst: str, fraction: float) -> str:
    data = open(src, "rb").read()
    with open(dst, "wb") as f:
        f.write(data[: int(len(data) * fraction)])
    return dst


def _mdat(data: bytes) -> tuple[int, int]:
    """Start and end of the coded frames (the ``mdat`` box) of an mp4."""
    pos = 0
    while pos + 8 <= len(data):
        size, kind = int.from_bytes(data[pos : pos + 4], "big"), data[pos + 4 : pos + 8]
        if kind == b"mdat":
            return pos + 8, pos + size
        pos += size
    raise ValueError("no mdat box")


def _damage(src: str, dst: str, first: float, last: float) -> str:
    """Invert the coded frame bytes between fractions ``first`` and ``last`` of the mdat box;
    the container (moov) stays intact, so the file opens and its frames fail."""
    data = bytearray(open(src, "rb").read())
    lo, hi = _mdat(bytes(data))
    a, b = lo + int((hi - lo) * first), lo + int((hi - lo) * last)
    data[a:b] = bytes(x ^ 0xFF for x in data[a:b])
    with open(dst, "wb") as f:
        f.write(bytes(data))
    return dst


def _still_png(path: str) -> str:
    from PIL import Image

    Image.fromarray(frames(1)[0]).save(path)
    return path


def _zip(path: str) -> str:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(zipfile.ZipInfo("readme.txt", (2020, 1, 1, 0, 0, 0)), "not a video\n" * 20)
    with open(path, "wb") as f:
        f.write(buf.getvalue())
    return path


def make_zoo(
    folder: str, http_base: str | None = None, dead_url: str | None = None
) -> list[ZooEntry]:
    """Write the zoo into ``folder``; ``http_base`` serves ``folder`` (for URL kinds)."""
    os.makedirs(folder, exist_ok=True)

    def p(name: str) -> str:
        return os.path.join(folder, name)

    base = frames(40)
    ok = write_clip(p("ok_h264.mp4"), base)
    faststart = write_clip(p("faststart.mp4"), base, container_options={"movflags": "faststart"})
    mkv = write_clip(p("whole.mkv"), base)
    open(p("empty.mp4"), "wb").close()
    with open(p("garbage.mp4"), "wb") as f:
        f.write(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with open(p("notes.txt"), "w") as f:
        f.write("hello, these are notes\n" * 30)
    with open(p("text_named.mp4"), "w") as f:
        f.write("this file only pretends to be a video\n" * 30)
    os.makedirs(p("a_folder.mp4"), exist_ok=True)
    with open(ok, "rb") as src, open(p("mp4_named.avi"), "wb") as dst:
        dst.write(src.read())
    entries = [
        ZooEntry("ok_h264", ok, "ok"),
        ZooEntry("empty", p("empty.mp4"), "failed", "empty"),
        ZooEntry("garbage", p("garbage.mp4"), "failed", "corrupt"),
        ZooEntry("truncated_no_index", _cut(ok, p("trunc_moov_end.mp4"), 0.5), "failed", "corrupt"),
        ZooEntry("truncated_faststart", _cut(faststart, p("trunc_fast.mp4"), 0.8), "ok"),
        ZooEntry("truncated_mkv", _cut(mkv, p("trunc.mkv"), 0.6), "ok"),
        ZooEntry(
            "damaged_stream", _damage(ok, p("damaged.mp4"), 0.0, 1.0), "failed", "undecodable"
        ),
        ZooEntry("damaged_tail", _damage(ok, p("damaged_tail.mp4"), 0.85, 1.0), "ok"),
        ZooEntry("audio_only", _audio_only(p("audio.m4a"), False), "failed", "no-video-stream"),
        ZooEntry("zero_frames", _audio_only(p("zero_frames.mkv"), True), "failed", "no-frames"),
        ZooEntry("one_frame", write_clip(p("one.mp4"), base[:1]), "ok"),
        ZooEntry("five_frames", write_clip(p("five.mp4"), base[:5]), "ok"),
        ZooEntry(
            "huge_resolution",
            write_clip(p("huge.mp4"), frames(2, 2560, 2560), options={"preset": "ultrafast"}),
            "ok",
        ),
        ZooEntry(
            "odd_size",
            write_clip(p("odd.mkv"), frames(6, 17, 33), codec="mjpeg", pix_fmt="yuvj444p"),
            "ok",
        ),
        ZooEntry("text_file", p("notes.txt"), "failed", "not-video"),
        ZooEntry("text_named_mp4", p("text_named.mp4"), "failed", "not-video"),
        ZooEntry("zip_named_mp4", _zip(p("archive.mp4")), "failed", "not-video"),
        ZooEntry("missing_path", p("does_not_exist.mp4"), "failed", "missing"),
        ZooEntry("directory", p("a_folder.mp4"), "failed", "not-a-file"),
        ZooEntry("wrong_extension", p("mp4_named.avi"), "ok"),
        ZooEntry("rotated", remux_rotated(ok, p("rotated.mp4")), "ok"),
        ZooEntry("vp9", write_clip(p("vp9.webm"), base[:12], codec="libvpx-vp9"), "ok"),
        ZooEntry("mpeg2", write_clip(p("mpeg2.mpg"), base[:12], codec="mpeg2video", fps=25), "ok"),
        ZooEntry("gif", write_clip(p("anim.gif"), base[:8], codec="gif", pix_fmt="rgb8"), "ok"),
        ZooEntry("still_image", _still_png(p("still.png")), "ok"),
        ZooEntry(
            "vfr", write_clip(p("vfr.mkv"), base[:6], pts_ms=[0, 40, 80, 200, 220, 700]), "ok"
        ),
        ZooEntry(
            "mjpeg_avi",
            write_clip(p("mjpeg.avi"), base[:8], codec="mjpeg", pix_fmt="yuvj420p"),
            "ok",
        ),
        ZooEntry("clip", ok, "ok", start=0.5, end=1.5),
        ZooEntry("clip_past_end", ok, "failed", "no-frames", start=100.0, end=101.0),
        ZooEntry("clip_inverted", ok, "failed", "invalid-clip", start=2.0, end=1.0),
        ZooEntry("no_path", "", "failed", "invalid-entry"),
        ZooEntry("../escape", ok, "failed", "invalid-id"),
        ZooEntry("dup", ok, "ok"),
        ZooEntry("dup", p("one.mp4"), "failed", "duplicate-id"),  # the later entry loses
    ]
    if http_base:
        entries += [
            ZooEntry("http_ok", f"{http_base}/ok_h264.mp4", "ok"),
            ZooEntry("http_404", f"{http_base}/nothing_here.mp4", "failed", "missing"),
        ]
    if dead_url:
        entries.append(ZooEntry("unreachable_url", dead_url, "failed", "unreachable"))
    if os.geteuid() != 0:  # root reads anything: the kind only exists for other users
        locked = write_clip(p("locked.mp4"), base[:4])
        os.chmod(locked, 0)
        entries.append(ZooEntry("permission_denied", locked, "failed", "unreadable"))
    return entries


def write_manifest(entries: list[ZooEntry], path: str) -> str:
    """A CSV manifest of the zoo, with a ``kind`` column carried into the store."""
    import csv

    with open(path, "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["video_id", "path", "start", "end", "kind"])
        for e in entries:
            out.writerow(
                [
                    e.video_id,
                    e.path,
                    "" if e.start is None else e.start,
                    "" if e.end is None else e.end,
                    e.reason or "ok",
                ]
            )
    return path


def expected_rows(entries: list[ZooEntry]) -> dict[str, tuple[str, str | None]]:
    """video_id in the store -> (status, failure class), with the listing's derived ids."""
    import hashlib

    out: dict[str, tuple[str, str | None]] = {}
    for e in entries:
        vid = e.video_id
        if e.reason == "invalid-id":
            vid = "#invalid-" + hashlib.sha1(repr(e.video_id).encode()).hexdigest()[:10]
        elif e.reason == "duplicate-id":
            vid = f"{e.video_id}#dup1"
        out[vid] = (e.status, e.reason)
    return out


@contextlib.contextmanager
def serve_folder(folder: str) -> Iterator[str]:
    """Serve ``folder`` over HTTP on loopback for the test's duration; yields the base URL."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep test output clean
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def dead_url() -> str:
    """A loopback URL nothing listens on (the port was free a moment ago): connection refused."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/video.mp4"
