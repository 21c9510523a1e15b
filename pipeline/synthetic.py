"""Synthetic labelled clips: a coloured shape moving across a noisy background.

The label depends on both colour and motion direction, so a model must see colour and temporal
order to get it right: a mean over time cannot tell left-to-right from right-to-left. Used by
`merv demo`, the tests and the benchmarks, so everything runs offline on generated files.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

COLOURS = {"red": (220, 40, 40), "blue": (40, 80, 220)}
DIRECTIONS = ("left", "right")
CLASSES = tuple(f"{c}_{d}" for c in COLOURS for d in DIRECTIONS)


@dataclass(frozen=True)
class ClipSpec:
    label: str
    n_frames: int
    size: int
    shape_size: int
    y: int
    seed: int


def render_clip(spec: ClipSpec) -> np.ndarray:
    """uint8 frames [n_frames, size, size, 3]."""
    rng = np.random.default_rng(spec.seed)
    colour, direction = spec.label.split("_")
    frames = np.empty((spec.n_frames, spec.size, spec.size, 3), np.uint8)
    background = rng.integers(90, 160, size=3)
    travel = spec.size - spec.shape_size
    for t in range(spec.n_frames):
        progress = t / max(spec.n_frames - 1, 1)
        x = (
            int(round(progress * travel))
            if direction == "right"
            else int(round((1 - progress) * travel))
        )
        noise = rng.integers(-12, 13, size=(spec.size, spec.size, 3))
        frame = np.clip(background + noise, 0, 255)
        s = spec.shape_size
        frame[spec.y : spec.y + s, x : x + s] = COLOURS[colour]
        frames[t] = frame
    return frames


def write_video(path: str, frames: np.ndarray, fps: int = 16, codec: str = "libx264") -> None:
    """Encode RGB uint8 frames [T, H, W, 3] to ``path`` with PyAV (no ffmpeg binary needed)."""
    import av

    with av.open(path, mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.height, stream.width = frames.shape[1], frames.shape[2]
        stream.pix_fmt = "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "veryfast"}
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def make_corpus(
    folder: str, per_class: int = 16, size: int = 96, seed: int = 0
) -> list[tuple[str, str]]:
    """Write ``per_class`` clips per class into ``folder``; returns (video_id, label) pairs."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = []
    for label in CLASSES:
        for i in range(per_class):
            shape_size = int(rng.integers(size // 6, size // 3))
            spec = ClipSpec(
                label,
                n_frames=int(rng.integers(24, 49)),
                size=size,
                shape_size=shape_size,
                y=int(rng.integers(0, size - shape_size)),
                seed=int(rng.integers(1 << 31)),
            )
            video_id = f"{label}_{i:03d}"
            write_video(os.path.join(folder, f"{video_id}.mp4"), render_clip(spec))
            labels.append((video_id, label))
    return labels
