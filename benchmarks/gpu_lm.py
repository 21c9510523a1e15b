"""MERV's alignment step split on a GPU: Llama-2-7B's shape at bf16, random weights.

The same measurement as `benchmarks.lm_bench` (data wait, projectors + mixer, language model),
at hidden 4096, 32 layers, 32 heads, intermediate 11008, vocabulary 32,000, with the four MERV
encoders' 1,024 visual tokens of 4096 channels, batch 2, bf16 autocast; the frozen model is
built in bf16 directly on the GPU (about 13.5 GB).

`python -m benchmarks.gpu_lm [--batch 2] [--steps 4]`
(`--device cpu --small` runs the same code at the CPU benchmark's shape, to check the script.)
"""

from __future__ import annotations

import argparse
import sys

import torch

from benchmarks.lm_bench import LlamaShape, report, step_split

LLAMA2_7B = LlamaShape(hidden=4096, layers=32, heads=32, intermediate=11008, vocab=32000)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--steps", type=int, default=4)
    p.add_argument("--small", action="store_true", help="the CPU benchmark's shape")
    args = p.parse_args(argv)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("no GPU here: run on a GPU machine, or --device cpu --small", file=sys.stderr)
        return 2
    shape = LlamaShape() if args.small else LLAMA2_7B
    precision = "bf16" if args.device.startswith("cuda") else "fp32"
    split = step_split(shape, args.device, precision, args.batch, args.steps)
    where = torch.cuda.get_device_name(0) if args.device.startswith("cuda") else "CPU"
    report(shape, split, f"{where} {precision}", args.batch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
