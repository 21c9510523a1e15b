"""HD test footage for the decode benchmark: panning texture, film grain, a moving square.

Compressible like camera footage (not noise) yet with grain that costs bits, so a 1080p clip
runs at ~10 Mbit/s; encoded with x264 at a fixed keyframe interval (``-g``). Written once and
kept in ``bench_out/decode_clips`` (``make clean`` removes it).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class HdClip:
    name: str
    width: int
    height: int
    seconds: float
    fps: int = 30
    gop: int = 250
    preset: str = "veryfast"  # long clips use a faster preset only to keep generation short
    crf: int = 18


def _texture(width: int, height: int, travel: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random texture ``travel`` pixels wider than the frame (the camera pans)."""
    bh, bw = height + 32, width + travel + 32
    coarse = rng.integers(0, 255, size=(bh // 16 + 2, bw // 16 + 2, 3)).astype(np.float32)
    big = np.kron(coarse, np.ones((16, 16, 1), np.float32))[:bh, :bw]
    big = (big + np.roll(big, 8, 0) + np.roll(big, 8, 1) + np.roll(big, 8, (0, 1))) / 4
    return big.astype(np.uint8)


def write_hd_clip(clip: HdClip, folder: Path, seed: int = 0) -> str:
    """Write ``clip`` into ``folder`` (kept if already there); returns its path."""
    import av

    path = folder / f"{clip.name}.mp4"
    if path.exists():
        return str(path)
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    n = int(clip.seconds * clip.fps)
    step = 2 if n < 1000 else 1
    texture = _texture(clip.width, clip.height, step * n, rng)
    grain = rng.integers(-5, 6, size=(7, clip.height, clip.width, 1)).astype(np.int16)
    side = clip.height // 6
    tmp = path.with_suffix(".part.mp4")
    with av.open(str(tmp), "w") as container:
        stream = container.add_stream("libx264", rate=clip.fps)
        stream.width, stream.height, stream.pix_fmt = clip.width, clip.height, "yuv420p"
        keyint = f"keyint={clip.gop}:min-keyint={clip.gop}:scenecut=0"
        stream.options = {"crf": str(clip.crf), "preset": clip.preset, "x264-params": keyint}
        for t in range(n):
            x = step * t
            frame = texture[16 : 16 + clip.height, x : x + clip.width].astype(np.int16)
            px = int((clip.width - side) * (t % 300) / 299)
            frame[clip.height // 3 : clip.height // 3 + side, px : px + side] = (220, 40, 40)
            frame = np.clip(frame + grain[t % 7], 0, 255).astype(np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    tmp.rename(path)
    return str(path)
