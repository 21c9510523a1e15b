"""An ablation grid, measured (`python -m benchmarks.run ablation`).

The wall time of an 8-variant grid (each of four encoders alone, and each left out of the four:
two of MERV's tables) through `merv ablate` with the shared-read fast path (variants that read
alike train side by side over one read of the store) divided by the same grid run one variant
per Ray task, each reading the store itself. Target <= 0.4. Both arms run in this process on
the same store, through local Ray with the same resources; the store is written directly with
random features.

The target's measurement reads 2x2 tokens per frame (`pool_grid: [2]`, a small token budget:
reads dominate). Each arm runs twice, in the order one-by-one, shared, shared, one-by-one, and
the ratio takes each arm's faster run: the noise of other processes only adds time, and the
order puts each arm once after the other. A second line measures the stored 8x8 tokens once
per arm, where the eight models' arithmetic weighs more against the reads.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

ROWS = 512
WIDTHS = {"dino": 96, "siglip": 64, "vivit": 128, "lb": 64}  # ~0.7 MB per video in the store


def grid(store: str, out: str, shared_read: bool, pool_grid: int | None = 2):
    from mixer.ablation.grid import AblationConfig

    return AblationConfig(
        store=store, out=out, seeds=[0], encoders=["singles", "leave-one-out"],
        fusions=["cross_attention"], shared_read=shared_read, pool_grid=[pool_grid],
        train={"epochs": 2, "batch_size": 32, "d_model": 64, "device": "cpu",
               "fusion_options": {"attn_dim": 64}, "val_fraction": 0.2},
    )  # fmt: skip


def timed_grid(store: str, out: str, shared_read: bool, pool_grid: int | None = 2) -> float:
    from jobs.ablate import run_ablation

    start = time.perf_counter()
    outcome = run_ablation(grid(store, out, shared_read, pool_grid), echo=lambda *_: None)
    seconds = time.perf_counter() - start
    assert outcome.trained == 8 and not outcome.failed, outcome.failed
    return seconds


def main(argv: list[str] | None = None) -> int:
    del argv
    from benchmarks.training_bench import write_random_store

    with tempfile.TemporaryDirectory(dir=os.environ.get("MERV_BENCH_DIR")) as tmp:
        store = f"{tmp}/store.zarr"
        start = time.perf_counter()
        write_random_store(store, ROWS, WIDTHS)
        print(f"wrote a {ROWS}-row store of {len(WIDTHS)} encoders in "
              f"{time.perf_counter() - start:.0f}s")  # fmt: skip
        runs = {False: [], True: []}
        for i, shared_read in enumerate([False, True, True, False]):
            runs[shared_read].append(timed_grid(store, f"{tmp}/run{i}", shared_read))
        alone, shared = min(runs[False]), min(runs[True])
        full = {s: timed_grid(store, f"{tmp}/full{s}", s, pool_grid=None) for s in (False, True)}
    seen = lambda xs: " / ".join(f"{x:.1f}" for x in xs)  # noqa: E731
    print(f"8-variant grid, 2x2 tokens per frame: one variant per task {alone:.1f}s (runs "
          f"{seen(runs[False])}), shared read {shared:.1f}s (runs {seen(runs[True])}); "
          f"ratio {shared / alone:.2f} (target <= 0.4)")  # fmt: skip
    print(f"8-variant grid, 8x8 tokens per frame (one run each): one variant per task "
          f"{full[False]:.1f}s, shared read {full[True]:.1f}s; ratio "
          f"{full[True] / full[False]:.2f}")  # fmt: skip
    print(json.dumps({"ablation_shared_read_ratio": shared / alone,
                      "ablation_shared_read_ratio_8x8": full[True] / full[False]}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
