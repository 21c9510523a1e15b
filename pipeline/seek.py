"""Sparse decoding that knows the group of pictures: each sampled frame costs only the frames
it depends on.

A frame can only be decoded from its governing keyframe (the last keyframe at or before it in
presentation order) onwards. So the sampled frames are grouped by governing keyframe; each group
is one forward seek to its keyframe and one decode pass to its last sample, and a group whose
keyframe the decoder has already passed continues without seeking (no frame decoded twice). On
the way, packets that no sampled frame needs and that no other frame refers to (FFmpeg's
"non-reference" frames: most B-frames) are dropped before decoding (``skip_frame``).

Frames are named by their pts, looked up in the probe's table, so a seek landing on another
keyframe than asked, variable frame rates and B-frame reordering cannot mislabel a frame. Where
the pts cannot name frames (no pts, duplicates, MPEG-PS/TS, whose seeks are byte guesses), or a
seek overshoots, this decoder declines (``SeekUnsupported``) and the caller decodes in order.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pipeline.probe import Probe

__all__ = ["SeekUnsupported", "SparseFrames", "decode_sparse", "seek_groups"]


class SeekUnsupported(RuntimeError):
    """This file's frames cannot be sought and named by pts: decode it in order instead."""


@dataclass
class SparseFrames:
    frames: dict[int, np.ndarray] = field(default_factory=dict)  # presentation index -> RGB
    decoded: int = 0  # frames the decoder produced (dropped non-reference frames excluded)
    seeks: int = 0


def seek_groups(indices: np.ndarray, keyframes: np.ndarray) -> list[tuple[int, list[int]]]:
    """The distinct ``indices`` grouped by governing keyframe, in order: ``(keyframe, members)``.
    An index before the first keyframe counts as governed by frame 0."""
    keys = np.asarray(keyframes, dtype=np.int64)
    groups: dict[int, list[int]] = {}
    for i in sorted({int(x) for x in indices}):
        at = int(np.searchsorted(keys, i, side="right")) - 1
        groups.setdefault(int(keys[at]) if at >= 0 else 0, []).append(i)
    return list(groups.items())


def _convert(frame, size: tuple[int, int] | None, interpolation: str) -> np.ndarray:
    if size is None:
        return frame.to_ndarray(format="rgb24")
    return frame.to_ndarray(
        format="rgb24", width=size[0], height=size[1], interpolation=interpolation
    )


def decode_sparse(
    path: str,
    info: Probe,
    indices: np.ndarray,
    size: tuple[int, int] | None,
    threads: int,
    interpolation: str,
) -> SparseFrames:
    """The frames at ``indices`` (presentation order) of ``path``, converted to RGB at ``size``;
    wanted frames that never come out (a damaged file) are simply absent from the result."""
    import av

    if not info.seekable:
        raise SeekUnsupported("frames cannot be named by pts in this file")
    index_of = {int(p): i for i, p in enumerate(info.pts)}
    wanted = {int(i) for i in indices}
    wanted_pts = {int(info.pts[i]) for i in wanted}
    keyframes = info.keyframes if info.keyframes is not None else np.zeros(1, np.int64)
    out = SparseFrames()
    with av.open(path, metadata_errors="ignore") as container:
        stream = container.streams.video[0]
        stream.thread_count = threads
        if threads != 1:
            stream.thread_type = "AUTO"
        codec = stream.codec_context
        furthest = previous = -1  # the furthest frame given, and the last since a seek
        for key, members in seek_groups(indices, keyframes):
            if key > furthest + 1:  # frames to jump over: seek (the decoder is flushed)
                container.seek(int(info.pts[key]), stream=stream, backward=True)
                out.seeks += 1
                first, previous = None, -1
            else:
                first = key
            for packet in container.demux(stream):
                keep = packet.pts is None or int(packet.pts) in wanted_pts
                codec.skip_frame = "DEFAULT" if keep else "NONREF"
                for frame in packet.decode():
                    i = index_of.get(frame.pts) if frame.pts is not None else None
                    if i is None:
                        raise SeekUnsupported(f"a decoded frame's pts {frame.pts} is unknown")
                    if first is None:
                        first = i
                        if i > members[0]:
                            raise SeekUnsupported(f"seek to frame {key} landed at frame {i}")
                    if i <= previous:  # the pts are not presentation times
                        raise SeekUnsupported(f"frame pts out of order ({i} after {previous})")
                    previous = i
                    out.decoded += 1
                    furthest = max(furthest, i)
                    if i in wanted and i not in out.frames:
                        out.frames[i] = _convert(frame, size, interpolation)
                if all(m in out.frames for m in members):
                    break
    return out
