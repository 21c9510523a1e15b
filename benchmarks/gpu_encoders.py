"""GPU throughput per encoder: videos/s at bf16 (or fp16) for the full-size architectures.

Weights are random (throughput does not depend on their values). A batch is `--batch` clips of
32 uint8 frames at 360x640 already on the GPU (decoding is not timed). Per encoder, after a
warm-up, `--iters` synchronised batches of: batched preprocessing alone, the frozen forward
alone (autocast + inference_mode, SDPA attention), and `encode` (both), from which videos/s.

`python -m benchmarks.gpu_encoders [--batch 8] [--iters 5] [--dtype bf16|fp16]`
(`--device cpu --tiny` runs the same code on the tiny variants, to check the script itself.)
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

import torch

NAMES = ("languagebind", "dinov2", "vivit", "siglip", "clip")
MERV = ("languagebind", "dinov2", "vivit", "siglip")


def _timed(fn: Callable[[], object], iters: int, warmup: int, device: torch.device) -> float:
    """Mean seconds per call, synchronised."""
    for _ in range(warmup):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / iters


def bench(
    name: str,
    videos: list[torch.Tensor],
    dtype: torch.dtype,
    iters: int,
    warmup: int,
    device: torch.device,
) -> dict:
    from encoders import build_encoder, get_spec

    spec = get_spec(name)
    enc = build_encoder(spec, device=device, dtype=dtype, random_init=not spec.tiny)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    with torch.inference_mode():
        pre = _timed(lambda: enc.preprocess(videos), iters, warmup, device)
        pixels = enc.preprocess(videos)

        def forward() -> torch.Tensor:
            with enc._autocast():
                return enc(pixels)

        fwd = _timed(forward, iters, warmup, device)
        e2e = _timed(lambda: enc.encode(videos), iters, warmup, device)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else 0.0
    params = sum(p.numel() for p in enc.parameters()) / 1e6
    return {"name": name, "params": params, "pre": pre, "fwd": fwd, "e2e": e2e, "peak": peak}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8, help="clips per batch (8)")
    parser.add_argument("--iters", type=int, default=5, help="timed batches (5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches first (2)")
    parser.add_argument("--dtype", choices=["bf16", "fp16"], default="bf16")
    parser.add_argument("--size", default="360x640", help="decoded frame size HxW (360x640)")
    parser.add_argument("--encoders", default=",".join(NAMES), help="comma list of base names")
    parser.add_argument(
        "--device", default="cuda", help="cuda (default) or cuda:N; cpu for a check"
    )
    parser.add_argument("--tiny", action="store_true", help="tiny variants (script check)")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print(
            "gpu_encoders: no CUDA GPU visible; this benchmark needs one "
            "(CPU per-clip timings: python -m benchmarks.encoders_bench)",
            file=sys.stderr,
        )
        return 1
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[args.dtype]
    height, width = (int(v) for v in args.size.lower().split("x"))
    g = torch.Generator().manual_seed(0)
    videos = [
        torch.randint(0, 256, (32, height, width, 3), dtype=torch.uint8, generator=g).to(device)
        for _ in range(args.batch)
    ]
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(
        f"{where}; torch {torch.__version__}; {args.dtype} autocast; batch of {args.batch} "
        f"clips x 32 frames at {height}x{width} on the device; mean of {args.iters} batches "
        f"after {args.warmup} warm-up"
    )
    header = (
        f"{'encoder':<20}{'params M':>9}{'preprocess ms':>15}{'forward ms':>12}"
        f"{'encode ms':>11}{'videos/s':>10}{'peak GiB':>10}"
    )
    print(header)
    print("-" * len(header))
    results = {}
    for base in [n for n in args.encoders.split(",") if n]:
        name = f"{base}-tiny" if args.tiny else base
        r = bench(name, videos, dtype, args.iters, args.warmup, device)
        if device.type == "cuda":
            torch.cuda.empty_cache()  # the encoder went out of scope with bench()
        results[base] = r
        print(
            f"{name:<20}{r['params']:>9.1f}{r['pre'] * 1e3:>15.1f}{r['fwd'] * 1e3:>12.1f}"
            f"{r['e2e'] * 1e3:>11.1f}{args.batch / r['e2e']:>10.1f}{r['peak']:>10.2f}",
            flush=True,
        )
    merv = [results[n]["e2e"] for n in MERV if n in results]
    if len(merv) == len(MERV):  # one actor runs the four encoders one after another per batch
        print(f"MERV set (4 encoders in sequence): {args.batch / sum(merv):.1f} videos/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
