"""`merv cost STORE [--price-per-hour X] [--runs DIR ...]`: what extraction cost, per encoder
per 1,000 videos, and after how much training the cache has paid for itself.

Everything is measured: worker seconds per encoder (preprocessing and forward) and for decoding
and writing come from the extract job's telemetry (``STORE/_jobs/extract_summary.json``), bytes
per encoder from the store's files, and a training run's seconds and videos seen from its
output folder (``results.json``, ``train_config.yaml``). Running MERV's way, the encoders
compute every video's features at every epoch; on the cache they ran once.
"""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "cost",
        help="extraction cost per encoder per 1,000 videos, and when the cache pays off",
        description="Time and storage per encoder per 1,000 videos from the store's telemetry, "
        "and the break-even point against running the encoders on the fly at every step.",
    )
    p.add_argument("store")
    p.add_argument("--price-per-hour", type=float, dest="price", help="price of a worker hour")
    p.add_argument("--runs", nargs="*", default=[], help="training output folders to compare")
    p.set_defaults(handler=lambda args: print_cost(args.store, args.price, args.runs) and 0)


def extraction_cost(store: str) -> dict:
    """Per encoder: seconds (preprocess, forward) and bytes; shared: decode and write seconds;
    ``videos``: the videos encoded."""
    import fsspec

    from pipeline.store.layout import JOBS_DIR

    fs, root = fsspec.core.url_to_fs(store)
    root = root.rstrip("/")
    try:
        summary = json.loads(fs.cat_file(f"{root}/{JOBS_DIR}/extract_summary.json"))
    except FileNotFoundError as err:
        raise ValueError(f"store {store} has no extraction telemetry ({JOBS_DIR}/"
                         "extract_summary.json): extract it with merv extract") from err  # fmt: skip
    per_encoder = summary.get("encoders") or {}
    if not per_encoder:
        raise ValueError(f"store {store}: its telemetry has no per-encoder seconds (written by "
                         "an older merv extract): re-run merv extract on a copy to measure")  # fmt: skip
    encoders = {}
    for name, spent in per_encoder.items():
        path = f"{root}/features/{name}"
        size = int(fs.du(path)) if fs.exists(path) else 0
        encoders[name] = {**spent, "bytes": size}
    return {"videos": int(summary["ok"]), "decode_s": float(summary["decode_s"]),
            "write_s": float(summary["write_s"]), "encoders": encoders}  # fmt: skip


def print_cost(store: str, price: float | None = None, runs=(), echo=print) -> dict:
    cost = extraction_cost(store)
    n = max(1, cost["videos"])
    k = 1000 / n
    echo(f"store {store}: {cost['videos']} videos; per 1,000 videos (worker seconds):")
    echo(f"  {'part':<22}{'preprocess s':>14}{'forward s':>12}{'storage MB':>12}"
         + (f"{'cost':>10}" if price else ""))  # fmt: skip
    total_s = 0.0
    for name, e in cost["encoders"].items():
        seconds = (e["preprocess_s"] + e["forward_s"]) * k
        total_s += seconds
        money = f"{price * seconds / 3600:>10.2f}" if price else ""
        echo(f"  {name:<22}{e['preprocess_s'] * k:>14.1f}{e['forward_s'] * k:>12.1f}"
             f"{e['bytes'] * k / 1e6:>12.1f}{money}")  # fmt: skip
    for part in ("decode_s", "write_s"):
        seconds = cost[part] * k
        total_s += seconds
        money = f"{price * seconds / 3600:>10.2f}" if price else ""
        echo(f"  {part[:-2]:<22}{'':>14}{seconds:>12.1f}{'':>12}{money}")
    echo(
        f"  {'total':<22}{'':>14}{total_s:>12.1f}"
        + (f"{'':>12}{price * total_s / 3600:>10.2f}" if price else "")
    )
    # On the fly (MERV's way), every epoch decodes and encodes every video again.
    per_video = (cost["decode_s"] + sum(e["preprocess_s"] + e["forward_s"]
                                        for e in cost["encoders"].values())) / n  # fmt: skip
    extraction = total_s / k
    epochs = extraction / (per_video * n)
    echo(f"break-even: the extraction ({extraction:.1f} worker s) equals {epochs:.2f} epoch(s) of "
         "running the encoders on the fly over the same videos")  # fmt: skip
    out = {"per_1000_videos_s": total_s, "extraction_s": extraction, "break_even_epochs": epochs,
           "runs": []}  # fmt: skip
    for run in runs:
        out["runs"].append(_run_break_even(run, per_video, extraction, echo))
    return out


def _run_break_even(run: str, per_video: float, extraction: float, echo) -> dict:
    from mixer.checkpoint import saved_train_config

    res = json.loads(open(f"{run}/results.json").read())
    epochs = saved_train_config(run).epochs or len(res["train_loss"])
    seen = (res["n_train"] + res["n_val"]) * epochs
    on_the_fly = res["seconds"] + seen * per_video
    runs = extraction / max(1e-9, on_the_fly - res["seconds"])
    echo(f"run {run}: {res['seconds']:.1f}s on the cache; about {on_the_fly:.0f}s with the "
         f"encoders on the fly ({seen} video-epochs); the extraction is repaid after "
         f"{runs:.2f} such run(s)")  # fmt: skip
    return {"run": run, "cached_s": res["seconds"], "on_the_fly_s": on_the_fly, "runs": runs}
