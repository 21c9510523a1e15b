"""Per-encoder cost of one clip on CPU: batched tensor preprocessing and the frozen forward.

For each of the five reference encoders, the tiny variant and the full-size architecture (random
weights: timing does not depend on their values). One clip is 32 decoded uint8 frames at 360x640;
preprocessing is `FrozenEncoder.preprocess` (frame stride, resize, crop, normalise), forward is
the backbone on the preprocessed frames. Tiny: best of `--repeats` after a warm-up; full size: one
timed clip (a ViT-L forward of 16 frames takes seconds on a laptop CPU).

`python -m benchmarks.encoders_bench [--skip-full] [--repeats N] [--size HxW]`
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch

NAMES = ("languagebind", "dinov2", "vivit", "siglip", "clip")


def _timed(fn: Callable[[], object], repeats: int, warmup: int) -> float:
    """Best wall time of `repeats` calls, in milliseconds."""
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def _clip(height: int, width: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (32, height, width, 3), dtype=torch.uint8, generator=g)


def bench_one(name: str, video: torch.Tensor, repeats: int, warmup: int) -> dict:
    from encoders import build_encoder, get_spec

    spec = get_spec(name)
    start = time.perf_counter()
    enc = build_encoder(name, random_init=not spec.tiny)
    build_s = time.perf_counter() - start
    with torch.inference_mode():
        pre_ms = _timed(lambda: enc.preprocess([video]), repeats, warmup)
        pixels = enc.preprocess([video])
        fwd_ms = _timed(lambda: enc(pixels), repeats, warmup)
        out = enc(pixels)
    params = sum(p.numel() for p in enc.parameters()) / 1e6
    return {
        "encoder": name,
        "frames": spec.frames,
        "params_m": params,
        "build_s": build_s,
        "preprocess_ms": pre_ms,
        "forward_ms": fwd_ms,
        "grid": "x".join(map(str, out.shape[1:])),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed clips per tiny encoder")
    parser.add_argument("--size", default="360x640", help="decoded frame size HxW (360x640)")
    parser.add_argument("--skip-full", action="store_true", help="tiny variants only")
    parser.add_argument("--encoders", default=",".join(NAMES), help="comma list of base names")
    args = parser.parse_args(argv)  # None: the command line
    height, width = (int(v) for v in args.size.lower().split("x"))
    video = _clip(height, width)
    names = [n for n in args.encoders.split(",") if n]
    print(
        f"CPU, {torch.get_num_threads()} torch threads; one clip = 32 uint8 frames at "
        f"{height}x{width}; per-clip times in ms (tiny: best of {args.repeats}; full: 1 clip)"
    )
    header = (
        f"{'encoder':<20}{'config':<6}{'frames':>7}{'params M':>10}{'build s':>9}"
        f"{'preprocess ms':>15}{'forward ms':>12}  raw grid"
    )
    print(header)
    print("-" * len(header))
    configs = [("tiny", f"{n}-tiny", args.repeats, 1) for n in names]
    if not args.skip_full:
        configs += [("full", n, 1, 0) for n in names]
    for label, name, repeats, warmup in configs:
        r = bench_one(name, video, repeats, warmup)
        print(
            f"{name:<20}{label:<6}{r['frames']:>7}{r['params_m']:>10.1f}{r['build_s']:>9.1f}"
            f"{r['preprocess_ms']:>15.1f}{r['forward_ms']:>12.1f}  {r['grid']}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
