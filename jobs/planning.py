"""Reconcile a corpus with a (possibly existing) store: what must run, for which encoders.

Rows are the sorted video ids when a store is created; videos added later are appended in sorted
order, so existing rows never move. Work is planned per row and per encoder from the store's row
status (its commit markers): a row committed for an encoder is never recomputed for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass

import numpy as np

from pipeline.corpus import ShardPlan, plan_shards
from pipeline.decode_settings import describe_tag
from pipeline.rows import FAILED, PENDING
from pipeline.sources import VideoItem
from pipeline.store import FeatureStore, StoreError

log = logging.getLogger(__name__)


@dataclass
class ShardWork:
    shard: int
    rows: list[int]  # rows to decode in this run
    encoders_by_row: dict[int, tuple[str, ...]]  # which encoders each of those rows needs


def stored_fingerprint(spec, decode_tag: dict | None = None) -> str:
    """The fingerprint a store records for ``spec``'s features: the spec's own, mixed with how
    frames were decoded when that is not exact (``DecodeSettings.fingerprint_tag``), so fast-
    and exact-decoded features never share an array. Exact keeps the spec's own fingerprint,
    so stores made before decode modes existed resume unchanged."""
    if not decode_tag:
        return spec.fingerprint()
    canon = json.dumps(decode_tag, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{spec.fingerprint()}|decode={canon}".encode()).hexdigest()[:16]


def _spec_entry(spec, decode_tag: dict | None) -> tuple[int, dict]:
    entry = {**spec.to_dict(), "fingerprint": stored_fingerprint(spec, decode_tag)}
    if decode_tag:
        entry["decode"] = decode_tag
    return spec.width, entry


def _decoded_as(store: FeatureStore, name: str) -> str:
    return describe_tag((store.encoder_attrs(name).get("spec") or {}).get("decode"))


def open_or_create_store(
    url: str,
    items: list[VideoItem],
    specs: list,
    shard_size: int,
    time_steps: int,
    grid: int,
    num_frames: int,
    overwrite: tuple[str, ...] = (),
    decode_tag: dict | None = None,
) -> tuple[FeatureStore, int, list[str]]:
    """The store for this job: created, or grown by new videos and new encoders; ``decode_tag``
    says how this job decodes (None: exact), part of every encoder's stored fingerprint."""
    if not FeatureStore.exists(url):
        plan = plan_shards(items, shard_size)
        store = FeatureStore.create(
            url,
            plan.video_ids,
            {s.name: _spec_entry(s, decode_tag) for s in specs},
            shard_size,
            time_steps,
            grid,
            attrs={"num_frames": num_frames},
        )
        return store, 0, []
    store = FeatureStore.open(url, mode="r+")
    for key, want in (("shard_size", shard_size), ("time_steps", time_steps), ("grid", grid)):
        if int(store.attrs[key]) != want:
            raise StoreError(
                f"store {url} has {key}={store.attrs[key]}, this job asks for {want}; "
                f"use the store's value or a new --store"
            )
    added = []
    for spec in specs:
        fingerprint = stored_fingerprint(spec, decode_tag)
        if spec.name in store.encoders:
            have, want = store.encoder_attrs(spec.name).get("fingerprint"), fingerprint
            if have == want:
                continue
            if spec.name not in overwrite:
                raise StoreError(
                    f"store {url}: encoder {spec.name} was extracted with spec {have} "
                    f"({_decoded_as(store, spec.name)}), this job's spec is {want} "
                    f"({describe_tag(decode_tag)}); refusing to mix them. Pass "
                    f"--overwrite-encoder {spec.name} to re-extract it, or use a new --store"
                )
            log.warning(
                "dropping %s (spec %s) to re-extract it with spec %s", spec.name, have, want
            )
            store.drop_encoder(spec.name)
        store.add_encoder(spec.name, *_spec_entry(spec, decode_tag))
        added.append(spec.name)
    known = set(store.video_ids)
    new_ids = sorted({it.video_id for it in items} - known)
    store.append_videos(new_ids)
    drop_damaged(store)
    return store, len(new_ids), added


def drop_damaged(store: FeatureStore) -> list:
    """The cheap integrity check (sizes, one listing per encoder; hashing every committed byte
    on every rerun would cost a full read of the store): damaged or missing shards, and
    unreadable markers, lose their markers and so are recomputed by this run."""
    damage = store.damaged(hashes=False)
    if damage:
        store.invalidate(damage)
        log.warning(
            "store %s: %d damaged shard(s) recomputed: %s",
            store.url,
            len(damage),
            "; ".join(f"{d.encoder} shard {d.shard}: {d.problem}" for d in damage),
        )
    return damage


def plan_work(
    store: FeatureStore, items: list[VideoItem], encoders: list[str], retry_failed: bool = False
) -> tuple[ShardPlan, list[ShardWork], list[str]]:
    """Per shard, the rows to run and the encoders each needs: the rows an encoder has not
    committed (pending), and with ``retry_failed`` the rows it failed."""
    plan = store.plan
    ids = plan.video_ids
    have_source = {it.video_id for it in items}
    todo = np.zeros((len(encoders), plan.num_rows), dtype=bool)  # [encoder, row]: run it
    for i, name in enumerate(encoders):
        status = store.row_status(name)
        todo[i] = (status == PENDING) | (retry_failed & (status == FAILED))
    canonical: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple object per combination
    work = []
    for shard in range(plan.num_shards):
        span = plan.shard_rows(shard)
        rows = (np.nonzero(todo[:, span.start : span.stop].any(axis=0))[0] + span.start).tolist()
        if not rows:
            continue
        needs = {}
        for row in rows:
            key = tuple(n for n, run in zip(encoders, todo[:, row], strict=True) if run)
            needs[row] = canonical.setdefault(key, key)
        work.append(ShardWork(shard, rows, needs))
    missing = sorted(ids[r] for w in work for r in w.rows if ids[r] not in have_source)
    return plan, work, missing
