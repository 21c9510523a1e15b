"""An ablation grid, measured (`python -m benchmarks.run ablation`).

The wall time of an 8-variant grid (each of four encoders alone, and each left out of the four:
two of MERV's tables) through `merv ablate` with the shared-read fast path (variants that read alike train side by
side over one read of the store) divided by the same grid run one variant per Ray task, each
reading the store itself. Target <= 0.4. Both arms run in this process on the same store,
through local Ray with the same resources; the store is written directly with random features.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

ROWS = 512
WIDTHS = {"dino": 96, "siglip": 64, "vivit": 128, "lb": 64}  # ~0.7 MB per video in the store


def grid(store: str, out: str, shared_read: bool):
    from mixer.ablation.grid import AblationConfig

    return AblationConfig(
        store=store, out=out, seeds=[0], encoders=["singles", "leave-one-out"],
        fusions=["cross_attention"], shared_read=shared_read,
        train={"epochs": 2, "batch_size": 32, "d_model": 64, "pool_grid": 2, "device": "cpu",
               "fusion_options": {"attn_dim": 64},
               "val_fraction": 0.2},
    )  # fmt: skip


def timed_grid(store: str, out: str, shared_read: bool) -> float:
    from jobs.ablate import run_ablation

    start = time.perf_counter()
    outcome = run_ablation(grid(store, out, shared_read), echo=lambda *_: None)
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
        alone = timed_grid(store, f"{tmp}/alone", shared_read=False)
        shared = timed_grid(store, f"{tmp}/shared", shared_read=True)
    print(f"8-variant grid: one variant per task {alone:.1f}s, shared read {shared:.1f}s; "
          f"ratio {shared / alone:.2f} (target <= 0.4)")  # fmt: skip
    print(json.dumps({"ablation_shared_read_ratio": shared / alone}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
