"""`merv demo`: the whole flow offline in a few minutes on a laptop.

1. write a labelled synthetic corpus (coloured shapes whose label needs colour *and* motion),
2. extract it once with the four tiny MERV encoders on local Ray into a sharded Zarr store,
3. train the MERV mixer + probe over all four encoders, then each encoder alone, from the cache,
4. print a results table.
"""

from __future__ import annotations

import csv
import os
import time

from jobs.config import ExtractConfig
from jobs.extract import run_extract
from pipeline.synthetic import make_corpus


def run_demo(out: str, per_class: int = 24, epochs: int = 30, echo=print) -> list[dict]:
    from encoders import ENCODER_SETS
    from mixer import TrainConfig, train

    start = time.perf_counter()
    corpus, store = os.path.join(out, "corpus"), os.path.join(out, "store.zarr")
    labels_path = os.path.join(out, "labels.csv")
    if not os.path.exists(labels_path):
        echo(f"[1/3] writing {per_class * 4} synthetic clips to {corpus}")
        labels = make_corpus(corpus, per_class=per_class)
        with open(labels_path, "w", newline="") as f:
            csv.writer(f).writerows([("video_id", "label"), *labels])
    else:
        echo(f"[1/3] reusing the corpus in {corpus}")
    echo(f"[2/3] extracting with the tiny encoders into {store}")
    # CPU laptop: the encoder actor runs a thread per core (decoding the small clips is light).
    summary = run_extract(
        ExtractConfig(
            input=corpus,
            store=store,
            encoders="tiny",
            shard_size=16,
            encoder_threads=os.cpu_count() or 1,
        ),
        echo=echo,
    )
    echo("[3/3] training over the cached features (no video is decoded again)")
    tiny = ENCODER_SETS["tiny"]
    variants = [("MERV cross-attention", tiny)] + [(f"{name} alone", [name]) for name in tiny]
    rows = []
    for i, (title, encoders) in enumerate(variants):
        cfg = TrainConfig(
            store=store,
            labels=labels_path,
            encoders=encoders,
            epochs=epochs,
            out=os.path.join(out, "runs", title.split()[0]),
            seed=0,
        )
        result = train(cfg, log=echo if i == 0 else _quiet)  # per-epoch lines for MERV only
        rows.append(
            {
                "variant": title,
                "encoders": len(encoders),
                "val_acc": result.val_acc[-1],
                "train_acc": result.train_acc[-1],
                "seconds": result.seconds,
                "weights": result.mixer_weights,
            }
        )
    echo("")
    echo(format_table(rows, summary.ok, summary.failed, time.perf_counter() - start))
    return rows


def _quiet(_line: str) -> None:
    pass


def format_table(rows: list[dict], ok: int, failed: int, seconds: float) -> str:
    lines = [
        f"{'variant':<28}{'val acc':>9}{'train acc':>11}{'train s':>9}  mixer weights",
        "-" * 86,
    ]
    for r in rows:
        weights = (
            " ".join(f"{v:.2f}" for v in r["weights"].values()) if len(r["weights"]) > 1 else ""
        )
        lines.append(
            f"{r['variant']:<28}{100 * r['val_acc']:>8.1f}%{100 * r['train_acc']:>10.1f}%"
            f"{r['seconds']:>9.1f}  {weights}"
        )
    lines.append(f"{ok} videos extracted ({failed} failed); total {seconds:.0f}s")
    return "\n".join(lines)
