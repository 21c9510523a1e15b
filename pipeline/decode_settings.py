"""How a job decodes: the mode (exact or fast), the size frames leave the decoder at, threads.

- ``exact`` (the default): frames leave the decoder at their coded size, pixel for pixel what
  the reference decodes before its own resize; only frames beyond ``MAX_SHORT_SIDE`` x
  ``MAX_LONG_SIDE`` (4K and up) are shrunk, to bound one video's memory.
- ``fast``: the decoder's scaler shrinks every frame to ``short_side`` on its short side (aspect
  kept, never enlarged), by default twice the largest input of the job's encoders, so each
  encoder's own resize still downsamples by at least 2x. Frames cross Ray's object store at that
  size. Features change slightly (cosine >= 0.999 on real clips, README "Decoding speed"), so
  the mode and the size are part of every encoder's fingerprint (``fingerprint_tag``) and a store
  never mixes them.

Threads: one decoder thread per decode task by default: Ray already runs one task per core,
and FFmpeg's own threads then only contend with the other tasks (and, for sparse seeks, make
each seek wait for a whole pipeline of frames).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import failures
from pipeline.failures import DecodeError

EXACT, FAST = "exact", "fast"
MODES = (EXACT, FAST)
MAX_SHORT_SIDE = 1080  # exact mode's cap: 32 frames at 1080x1920 are ~200 MB
MAX_LONG_SIDE = 3840
MAX_SOURCE_PIXELS = 16384 * 16384  # beyond this even one decoded frame is unreasonable
FAST_SCALE = 2  # fast mode's default short side: this many times the largest encoder input
# The decoder's scaler (FFmpeg swscale) filter when frames are shrunk: its bicubic widens with
# the scale factor (antialiased), as the reference's PIL bicubic does.
INTERPOLATION = "BICUBIC"


@dataclass(frozen=True)
class DecodeSettings:
    mode: str = EXACT
    short_side: int = 0  # fast: the short side frames are decoded at; 0 = not resolved yet
    threads: int = 1  # decoder threads per decode task; 0 = FFmpeg's choice (one per core)

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"decode mode {self.mode!r} is not one of {MODES}")
        if self.threads < 0 or self.short_side < 0:
            raise ValueError("decode threads and short_side must be >= 0")

    @classmethod
    def for_encoders(
        cls, mode: str, short_side: int, threads: int, image_sizes: list[int]
    ) -> DecodeSettings:
        """The settings of a job whose encoders take ``image_sizes`` inputs: fast mode's size
        defaults to ``FAST_SCALE`` x the largest."""
        if mode == FAST and not short_side:
            short_side = FAST_SCALE * max(image_sizes or [224])
        return cls(mode, short_side if mode == FAST else 0, threads)

    def fingerprint_tag(self) -> dict | None:
        """What enters each encoder's fingerprint: None for exact (fingerprints, and so stores
        made before decode modes existed, stay as they were)."""
        if self.mode == EXACT:
            return None
        return {"mode": self.mode, "short_side": self.short_side, "scaler": INTERPOLATION.lower()}

    def frame_size(self, width: int, height: int) -> tuple[int, int] | None:
        """(width, height) to decode a ``width`` x ``height`` stream at; None = as coded."""
        if width <= 0 or height <= 0:
            return None
        if width * height > MAX_SOURCE_PIXELS:
            raise DecodeError(failures.TOO_LARGE, f"frames are {width}x{height}")
        short = MAX_SHORT_SIDE
        if self.mode == FAST:
            if not self.short_side:
                raise ValueError("fast decoding needs short_side (DecodeSettings.for_encoders)")
            short = self.short_side
        scale = min(1.0, short / min(width, height), MAX_LONG_SIDE / max(width, height))
        if scale >= 1.0:
            return None
        return 2 * max(1, round(width * scale / 2)), 2 * max(1, round(height * scale / 2))

    def to_dict(self) -> dict:
        return {"mode": self.mode, "short_side": self.short_side, "threads": self.threads}


def describe_tag(tag: dict | None, short: bool = False) -> str:
    """A stored decode tag (``fingerprint_tag``) for people: "exact decoding" / "fast decoding
    at 448", or with ``short`` "exact" / "fast@448"."""
    if not tag:
        return "exact" if short else "exact decoding"
    mode, side = tag["mode"], tag["short_side"]
    return f"{mode}@{side}" if short else f"{mode} decoding at {side}"
