"""`make bench`: every benchmark section, each printing ratios against a baseline from the same run.

Sections can be run alone: `python -m benchmarks.run encoders extraction`.
"""

from __future__ import annotations

import importlib
import platform
import sys
import time

SECTIONS = {
    "encoders": "benchmarks.encoders_bench",  # per-encoder preprocessing / forward time per clip
    "extraction": "benchmarks.extraction_bench",  # shared decode, pipeline efficiency, scaling, plan
    "training": "benchmarks.training_bench",  # flat memory, loader headroom, cache vs on the fly
    "lm": "benchmarks.lm_bench",  # MERV's alignment step split: data, projectors + mixer, LM
    "ablation": "benchmarks.ablation_bench",  # a grid: shared-read fast path vs one by one
    "distill": "benchmarks.distill_bench",  # a SigLIP-only student served vs its 4-encoder teacher
    "decode": "benchmarks.decode_bench",  # HD decoding: exact vs fast, GOP-aware seeks, bytes
}


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or list(SECTIONS)
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        print(f"unknown section(s) {unknown}; known: {list(SECTIONS)}", file=sys.stderr)
        return 2
    import os

    import torch

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"CUDA {'yes: ' + torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no'}"
    )
    for name in names:
        start = time.perf_counter()
        print(f"\n=== {name} ===")
        importlib.import_module(SECTIONS[name]).main([])
        print(f"--- {name}: {time.perf_counter() - start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
