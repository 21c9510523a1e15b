"""`merv explain STORE --checkpoint C`: which encoder the mixer trusted, for which video.

Writes ``OUT/mixer_weights.parquet`` (one row per video: id, source, label, a weight per
encoder), prints the videos each encoder is trusted most and least on with their sources, and a
per-label mean weight table with its PNG. A fusion without per-encoder weights is refused.
"""

from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser(
        "explain",
        help="per-video mixer weights of a checkpoint: who was trusted, where",
        description="Run a trained mixer over the store's videos and report its per-video "
        "encoder weights: a Parquet file, the most and least trusting videos per encoder, and "
        "a per-label summary with a PNG.",
    )
    p.add_argument("store")
    p.add_argument("--checkpoint", required=True, help="folder of model.safetensors")
    p.add_argument("--out", help="folder for the Parquet and PNG (default: the checkpoint's)")
    p.add_argument("--all", action="store_true", help="every row, not only the held-out ones")
    p.add_argument("--top", type=int, default=3, help="videos listed per encoder and end (3)")
    p.set_defaults(handler=_explain)


def _explain(args, echo=print) -> int:
    explain(args.store, args.checkpoint, args.out, "all" if args.all else "val", args.top, echo)
    return 0


def explain(store, checkpoint, out=None, which="val", top=3, echo=print) -> Path:
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from mixer.ablation import plots
    from mixer.ablation.weights import video_weights
    from pipeline.store import FeatureStore

    w = video_weights(checkpoint, store, which)
    out = Path(out or checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    manifest = FeatureStore.open(store).manifest()
    sources = dict(zip(manifest.column("video_id").to_pylist(),
                       manifest.column("source").to_pylist(), strict=True))  # fmt: skip
    table = {"video_id": w.video_ids, "source": [sources.get(v) for v in w.video_ids],
             "label": w.labels}  # fmt: skip
    table.update({f"w_{e}": w.weights[:, i] for i, e in enumerate(w.encoders)})
    path = out / "mixer_weights.parquet"
    pq.write_table(pa.table(table), str(path))
    echo(f"{len(w.video_ids)} {'held-out ' if which == 'val' else ''}videos; weights in {path}")
    for i, e in enumerate(w.encoders):
        order = np.argsort(w.weights[:, i], kind="stable")
        for end, picks in (("most", order[::-1][:top]), ("least", order[:top])):
            listed = ", ".join(f"{w.video_ids[k]} {w.weights[k, i]:.3f} ({sources.get(w.video_ids[k])})"
                               for k in picks)  # fmt: skip
            echo(f"{e} trusted {end}: {listed}")
    if any(w.labels):
        labels = np.array(w.labels)
        echo("mean weight by label: " + " ".join(f"{e:>12}" for e in w.encoders))
        for c in sorted(set(w.labels)):
            row = " ".join(
                f"{w.weights[labels == c, i].mean():12.3f}" for i in range(len(w.encoders))
            )
            echo(f"  {c:<18} {row}")
        png = plots.weights_by_class(w, out / "mixer_weights_by_label.png", str(checkpoint))
        echo(f"per-label picture: {png}")
    return path
