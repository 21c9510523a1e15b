"""`merv status`: per encoder, rows done / failed / pending, fingerprints, failure reasons."""

from __future__ import annotations

import json

from pipeline.decode_settings import describe_tag
from pipeline.rows import FAILED, OK, PENDING
from pipeline.store import FeatureStore


def store_status(url: str) -> dict:
    store = FeatureStore.open(url)
    ids = store.video_ids
    encoders = {}
    failures: dict[str, dict[str, str]] = {}
    for name in store.encoders:
        markers = store.commits(name)
        for marker in markers.values():
            for row, why in marker["failed"].items():
                failures.setdefault(ids[row], {})[name] = why
        status = store.row_status(name, markers=markers)
        encoders[name] = {
            "ok": int((status == OK).sum()),
            "failed": int((status == FAILED).sum()),
            "pending": int((status == PENDING).sum()),
            "width": store.width(name),
            "fingerprint": store.encoder_attrs(name).get("fingerprint"),
            # how its frames were decoded: exact, or fast@SHORT_SIDE (README "Decoding speed")
            "decode": describe_tag(_spec(store, name).get("decode"), short=True),
        }
    committed = store.committed_shards()
    return {
        "store": url,
        "rows": store.num_rows,
        "shards": {"total": store.num_shards, "committed": len(committed)},
        "time_steps": store.time_steps,
        "grid": store.grid,
        "encoders": encoders,
        "failures": [
            {
                "video_id": vid,
                "row": ids.index(vid),
                "error": next(iter(by_enc.values())),
                "encoders": sorted(by_enc),
            }
            for vid, by_enc in sorted(failures.items())
        ],
    }


def _spec(store: FeatureStore, name: str) -> dict:
    return store.encoder_attrs(name).get("spec") or {}


def format_status(info: dict, failed_only: bool = False) -> str:
    lines = []
    if not failed_only:
        lines += [
            f"store {info['store']}: {info['rows']} videos, shards {info['shards']['committed']}/"
            f"{info['shards']['total']} committed for every encoder, features "
            f"[{info['time_steps']}, {info['grid']}x{info['grid']}, C] float16",
            f"{'encoder':<22}{'ok':>7}{'failed':>8}{'pending':>9}{'width':>7}  fingerprint"
            "       decode",
        ]
        for name, e in info["encoders"].items():
            lines.append(
                f"{name:<22}{e['ok']:>7}{e['failed']:>8}{e['pending']:>9}{e['width']:>7}"
                f"  {e['fingerprint']}  {e['decode']}"
            )
    if info["failures"] or failed_only:
        lines.append(f"{len(info['failures'])} failed videos:")
        lines += [f"  {f['video_id']}: {f['error']}" for f in info["failures"]]
    return "\n".join(lines)


def print_status(url: str, as_json: bool, failed_only: bool = False) -> None:
    info = store_status(url)
    if as_json:
        print(json.dumps(info["failures"] if failed_only else info, indent=2))
    else:
        print(format_status(info, failed_only))
