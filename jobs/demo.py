"""`merv demo`: the whole flow offline in a few minutes on a laptop.

1. write a labelled synthetic corpus (coloured shapes whose label needs colour *and* motion),
2. extract it once with the four tiny MERV encoders on local Ray into a sharded Zarr store,
3. a small ablation from the cache (`merv ablate`): the four encoders with MERV's
   cross-attention and with channel concatenation, and each encoder alone, 2 seeds each;
   its table, pictures and report.html;
4. distillation (`merv distill --sweep`): the four-encoder cross-attention run as teacher, one
   student per subset of its encoders, quality kept against inference cost;
5. MERV's alignment stage (`merv train --lm`): a tiny Llama trained on the captions' text, then
   frozen; the projectors and mixer aligned on the cache; held-out videos captioned
   (`jobs/demo_lm.py`).
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path

from jobs.ablate import run_ablation
from jobs.config import ExtractConfig
from jobs.demo_lm import align_demo
from jobs.extract import run_extract
from mixer.ablation.grid import AblationConfig
from pipeline.synthetic import make_corpus


def run_demo(
    out: str, per_class: int = 48, epochs: int = 30, lm_epochs: int = 200, echo=print
) -> list[dict]:
    start = time.perf_counter()
    corpus, store = os.path.join(out, "corpus"), os.path.join(out, "store.zarr")
    labels_path = os.path.join(out, "labels.csv")
    if not os.path.exists(labels_path):
        echo(f"[1/5] writing {per_class * 4} synthetic clips to {corpus}")
        labels = make_corpus(corpus, per_class=per_class)
        with open(labels_path, "w", newline="") as f:
            csv.writer(f).writerows([("video_id", "label"), *labels])
    else:
        echo(f"[1/5] reusing the corpus in {corpus}")
        with open(labels_path, newline="") as f:
            labels = [(r["video_id"], r["label"]) for r in csv.DictReader(f)]
    echo(f"[2/5] extracting with the tiny encoders into {store}")
    # CPU laptop: the encoder actor runs a thread per core (decoding the small clips is light).
    extracted = run_extract(
        ExtractConfig(
            input=corpus,
            store=store,
            encoders="tiny",
            shard_size=16,
            encoder_threads=os.cpu_count() or 1,
        ),
        echo=echo,
    )
    echo("[3/5] a small ablation over the cached features (no video is decoded again)")
    grid = AblationConfig(
        store=store,
        out=os.path.join(out, "ablation"),
        seeds=[0, 1],
        encoders=["all", "singles"],  # the four together, and each alone
        fusions=["cross_attention", "channel_concat"],
        train={"labels": labels_path, "epochs": epochs, "loader_workers": 0},
    )
    outcome = run_ablation(grid, echo=echo)
    summary = json.loads((Path(grid.out) / "summary.json").read_text())
    best = max(summary, key=lambda s: s["val_acc"] or 0.0)
    echo(f"{extracted.ok} videos extracted ({extracted.failed} failed); best held-out accuracy "
         f"{100 * best['val_acc']:.1f}% ({best['variant']}); total "
         f"{time.perf_counter() - start:.0f}s")  # fmt: skip
    echo(f"report: {outcome.report} (open it in a browser: the table and the pictures)")
    distil_demo(store, Path(grid.out), epochs, echo)
    echo(f"[5/5] MERV's alignment stage: a frozen tiny Llama, the mixer aligned on {store}")
    align_demo(store, labels, os.path.join(out, "lm"), epochs=lm_epochs, echo=echo)
    return summary


def distil_demo(store: str, ablation: Path, epochs: int, echo=print) -> dict:
    """Step 4: every subset of the four encoders distilled from the ablation's four-encoder
    cross-attention run (seed 0), scored against it, on the store's measured encoder costs."""
    import pyarrow.parquet as pq

    from jobs.distill_cmd import encoder_costs
    from mixer.config import RECIPES
    from mixer.distill.sweep import run_sweep

    rows = pq.read_table(ablation / "results.parquet").to_pylist()
    run = next(r for r in rows if r["variant"] == "all fusion=cross_attention" and r["seed"] == 0)
    teacher = ablation / "variants" / run["variant_id"]
    out = ablation.parent / "students"
    echo(f"[4/5] distilling {teacher} into every subset of its encoders ({out})")
    epochs = min(epochs, RECIPES["distill"]["epochs"])  # the demo's --epochs caps it
    sweep = run_sweep(str(teacher), out, encoder_costs(store, echo), log=echo, epochs=epochs,
                      loader_workers=0)  # fmt: skip
    echo(sweep["table"])
    echo(f"picture: {sweep['png']}; serve a student on new videos with: merv embed VIDEOS "
         f"--model {out}/<student> --out embedded.zarr")  # fmt: skip
    return sweep
