"""GPU extraction throughput: decode alone (d), the four MERV encoders alone at bf16 (e), and
both together, against the bound min(d, e) that a GPU machine allows.

Full-size architectures with random weights (speed does not depend on the values). The
pipelined run uses the job's own pieces (decode_video in CPU worker processes, FrozenEncoder
with fixed-size padded batches, align_tokens, float16) with a bounded prefetch queue; it stands
in for the Ray Data job where Ray cannot be installed (as on this project's lent GPU machine,
whose image lacks Ray and whose transfer limit is below Ray's wheel). Where Ray is installed,
run `benchmarks.extraction_bench` on the GPU machine for the job itself.

`python -m benchmarks.gpu_pipeline --clips DIR [--videos 96] [--batch 8] [--decoders 15]`
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

MERV = ("languagebind", "dinov2", "vivit", "siglip")


def _decode(path: str):
    from pipeline.decode import decode_video

    return decode_video(path).frames


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", required=True, help="folder of video files (cycled)")
    parser.add_argument("--videos", type=int, default=96)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--decoders", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    parser.add_argument(
        "--check-on-cpu",
        action="store_true",
        help="run the script itself on CPU with the tiny encoders",
    )
    args = parser.parse_args(argv)
    import torch

    device = "cpu" if args.check_on_cpu else "cuda"
    names = tuple(f"{n}-tiny" for n in MERV) if args.check_on_cpu else MERV
    if device == "cuda" and not torch.cuda.is_available():
        print("no CUDA GPU: this benchmark needs one (CPU: python -m benchmarks.extraction_bench)")
        return 1
    from encoders import build_encoder, get_spec
    from encoders.align import align_tokens

    clips = sorted(str(p) for p in Path(args.clips).iterdir() if p.is_file())
    paths = list(itertools.islice(itertools.cycle(clips), args.videos))
    gpu = torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU check)"
    print(
        f"GPU {gpu}; {len(clips)} clips cycled to {len(paths)} "
        f"videos; batch {args.batch}; {args.decoders} decode processes; bf16"
    )
    with ProcessPoolExecutor(args.decoders) as pool:
        list(pool.map(_decode, clips))  # warm workers and page cache
        start = time.perf_counter()
        frames = list(pool.map(_decode, paths, chunksize=1))
        d = len(paths) / (time.perf_counter() - start)
    encoders = [
        build_encoder(
            get_spec(n), device=device, dtype=torch.bfloat16, random_init=not get_spec(n).tiny
        )
        for n in names
    ]
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def encode(batch):
        tensors = [torch.from_numpy(f) for f in batch]
        return [
            align_tokens(e.encode(tensors, pad_to=args.batch)).to(torch.float16).cpu()
            for e in encoders
        ]

    encode(frames[: args.batch])  # warm-up: kernels, autotuning
    sync()
    start = time.perf_counter()
    for lo in range(0, len(frames), args.batch):
        encode(frames[lo : lo + args.batch])
    sync()
    e = len(frames) / (time.perf_counter() - start)
    del frames
    with ProcessPoolExecutor(args.decoders) as pool:
        list(pool.map(_decode, clips))
        start = time.perf_counter()
        batch = []
        results = pool.map(_decode, paths, chunksize=1)  # executor keeps decodes in flight
        for video in results:
            batch.append(video)
            if len(batch) == args.batch:
                encode(batch)
                batch = []
        if batch:
            encode(batch)
        sync()
        e2e = len(paths) / (time.perf_counter() - start)
    bound = min(d, e)
    print(
        f"decode alone d = {d:.1f} videos/s; 4 MERV encoders alone e = {e:.1f} videos/s "
        f"(bf16, {torch.cuda.max_memory_allocated() / 2**30 if device == 'cuda' else 0:.1f} GiB peak)"
    )
    print(
        f"(b) pipelined end-to-end / min(d, e): {e2e:.1f} / {bound:.1f} = {e2e / bound:.2f} "
        f"(target >= 0.85)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
