"""`merv status`: what a store holds, per encoder: done / failed / pending rows, fingerprints."""

from __future__ import annotations

import json
from collections import Counter

from pipeline.store import FeatureStore


def store_status(url: str) -> dict:
    store = FeatureStore.open(url)
    manifest = store.manifest()
    status = Counter(manifest.column("status").to_pylist())
    committed = store.committed_shards()
    done_rows = sum(len(store.shard_rows(s)) for s in committed)
    failures = [
        {"video_id": v, "error": e}
        for v, s, e in zip(manifest.column("video_id").to_pylist(), manifest.column("status").to_pylist(),
                           manifest.column("error").to_pylist(), strict=False)
        if s != "ok"
    ]
    return {
        "store": url,
        "rows": store.num_rows,
        "shards": {"total": store.num_shards, "committed": len(committed)},
        "time_steps": store.time_steps,
        "grid": store.grid,
        "encoders": {
            name: {
                "ok": status.get("ok", 0),
                "failed": status.get("failed", 0),
                "pending": store.num_rows - done_rows,
                "width": store.width(name),
                "fingerprint": store.encoder_attrs(name).get("fingerprint"),
            }
            for name in store.encoders
        },
        "failures": failures,
    }


def format_status(info: dict) -> str:
    lines = [
        f"store {info['store']}: {info['rows']} videos, shards {info['shards']['committed']}/"
        f"{info['shards']['total']} committed, features [{info['time_steps']}, "
        f"{info['grid']}x{info['grid']}, C] float16",
        f"{'encoder':<22}{'ok':>7}{'failed':>8}{'pending':>9}{'width':>7}  fingerprint",
    ]
    for name, e in info["encoders"].items():
        lines.append(f"{name:<22}{e['ok']:>7}{e['failed']:>8}{e['pending']:>9}{e['width']:>7}  "
                     f"{e['fingerprint']}")
    if info["failures"]:
        lines.append(f"{len(info['failures'])} failed videos:")
        lines += [f"  {f['video_id']}: {f['error']}" for f in info["failures"]]
    return "\n".join(lines)


def print_status(url: str, as_json: bool) -> None:
    info = store_status(url)
    print(json.dumps(info, indent=2) if as_json else format_status(info))
