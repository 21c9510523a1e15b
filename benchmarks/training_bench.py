"""Training on the cache, measured (`python -m benchmarks.run training`).

(a) memory: peak RSS of one epoch of `merv train` over a 10,000-row store divided by that over
    a 1,000-row store (target <= 1.1: streaming keeps memory flat in the number of rows). The
    stores are written directly with random features through `pipeline.store`.
(b) loader vs trainer: batches/s of the stream alone (default reader workers) divided by the
    training steps/s on the same store (target >= 3: the trainer never waits for data).
(c) the point of the cache: steps/s of training the projectors + mixer on cached features of
    the four full-size MERV encoders, divided by steps/s of the same projectors + mixer fed by
    those encoders computing the features from decoded frames (random weights), MERV's way.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

SMALL, LARGE, WIDTH, SHARD, BATCH = 1_000, 10_000, 32, 64, 32


def write_random_store(
    url: str, rows: int, widths: dict[str, int], seed: int = 0, columns: dict | None = None
) -> None:
    """A store of ``rows`` videos with random float16 features and a two-class label, plus
    ``columns`` (name -> a value per row) in the manifest."""
    from pipeline.store import FeatureStore

    vids = [f"v{i:07d}" for i in range(rows)]
    specs = {name: (w, {"name": name, "fingerprint": name}) for name, w in widths.items()}
    store = FeatureStore.create(url, vids, specs, shard_size=SHARD, time_steps=16, grid=8)
    rng = np.random.default_rng(seed)
    for shard in range(store.num_shards):
        span = store.shard_rows(shard)
        feats = {
            name: rng.standard_normal((len(span), 16, 64, w), dtype=np.float32).astype(np.float16)
            for name, w in widths.items()
        }
        manifest = [
            {
                "row": r,
                "video_id": vids[r],
                "status": "ok",
                "error": None,
                "label": f"c{r % 2}",
                **{name: values[r] for name, values in (columns or {}).items()},
            }
            for r in span
        ]
        store.write_shard(shard, feats, manifest)


def train_config(store: str, **over):
    from mixer import TrainConfig

    base = dict(store=store, epochs=1, batch_size=BATCH, d_model=64, device="cpu")
    return TrainConfig(**{**base, "fusion_options": {"attn_dim": 256}, **over})


def peak_rss_mb(store: str) -> float:
    """Peak RSS of a training process over ``store`` (itself plus its largest reader)."""
    code = (
        "import resource, sys; from benchmarks.training_bench import train_config; "
        "from mixer import train; train(train_config(sys.argv[1]), log=lambda *a: None); "
        "s = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss; "
        "c = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss; print(s + c)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, store], capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1]) / 1024


def loader_vs_training(store: str) -> tuple[float, float]:
    from mixer import train
    from mixer.selection import select_rows
    from mixer.stream import FeatureStream, StreamConfig

    cfg = train_config(store)
    data = select_rows(cfg, log=lambda *a: None)
    rows, targets = data.part(data.train)
    with FeatureStream(store, data.encoders, rows, StreamConfig(BATCH), targets) as stream:
        start, n = time.perf_counter(), 0
        for _ in stream.epoch(0):
            n += 1
        loader = n / (time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as out:
        start = time.perf_counter()
        train(cfg.replace(out=out), log=lambda *a: None)
        steps = sum(1 for _ in open(Path(out) / "metrics.jsonl"))
        trainer = steps / (time.perf_counter() - start)
    return loader, trainer


def main(argv: list[str] | None = None) -> int:
    del argv
    with tempfile.TemporaryDirectory(dir=os.environ.get("MERV_BENCH_DIR")) as tmp:
        stores = {}
        for rows in (SMALL, LARGE):
            stores[rows] = f"{tmp}/rows{rows}.zarr"
            start = time.perf_counter()
            write_random_store(stores[rows], rows, {"enc": WIDTH})
            print(
                f"wrote a {rows}-row store ({WIDTH} channels) in {time.perf_counter() - start:.0f}s"
            )
        small, large = peak_rss_mb(stores[SMALL]), peak_rss_mb(stores[LARGE])
        print(f"(a) peak RSS, one epoch: {SMALL} rows {small:.0f} MB, {LARGE} rows {large:.0f} MB;"
              f" ratio {large / small:.3f} (target <= 1.1)")  # fmt: skip
        loader, trainer = loader_vs_training(stores[LARGE])
        print(f"(b) loader {loader:.1f} batches/s, training {trainer:.1f} steps/s; ratio "
              f"{loader / trainer:.1f} (target >= 3)")  # fmt: skip
    from benchmarks.training_onthefly import cached_vs_onthefly

    cached, fly = cached_vs_onthefly()
    print(f"(c) steps/s: cached features {cached:.2f}, four full-size encoders on the fly "
          f"{fly:.4f}; ratio {cached / fly:.0f} (target >= 100)")  # fmt: skip
    print(json.dumps({"rss_ratio": large / small, "loader_ratio": loader / trainer,
                      "cache_ratio": cached / fly}))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
