"""The single writer: collects encoded rows on the driver and writes each shard once complete.

Only this object, in the driver, ever writes to the store during a job, and only whole shards:
two writers on one Zarr shard silently lose rows. When a run computes only some rows or some
encoders of a shard (videos appended, an encoder added, failures retried), the rows it did not
compute are read back from the store and written again unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from jobs.planning import ShardWork
from pipeline.corpus import ShardPlan
from pipeline.rows import SCALAR_DECODE_COLUMNS
from pipeline.store import FeatureStore

META_KEYS = ("source", *SCALAR_DECODE_COLUMNS)  # copied from the decoded row to the manifest


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


class ShardWriter:
    def __init__(self, store: FeatureStore, plan: ShardPlan, work: list[ShardWork]):
        self.store, self.plan = store, plan
        self.needs = {w.shard: w.encoders_by_row for w in work}
        self.pending: dict[int, dict[int, dict]] = {}
        self.write_s = 0.0
        self.shards_written = 0

    @property
    def open_shards(self) -> list[int]:
        return sorted(self.pending)

    def add(self, result: dict) -> None:
        shard = self.plan.shard_of(result["row"])
        rows = self.pending.setdefault(shard, {})
        rows[result["row"]] = result
        if len(rows) == len(self.needs[shard]):
            self._write(shard, self.pending.pop(shard))

    def _write(self, shard: int, got: dict[int, dict]) -> None:
        start_time = time.perf_counter()
        store, needs = self.store, self.needs[shard]
        rows = store.shard_rows(shard)
        written = [e for e in store.encoders if any(e in needs[r] for r in got)]
        markers = {e: store.commit_marker(e, shard) for e in store.encoders}
        features, failed = {}, {}
        for name in written:
            block = store.read(name, rows.start, rows.stop)  # rows this run did not compute
            reasons = dict(markers[name]["failed"]) if markers[name] else {}
            for row, result in got.items():
                if name not in needs[row]:
                    continue
                reasons.pop(row, None)
                if result["status"] == "ok":
                    block[row - rows.start] = result[f"feat:{name}"]
                else:
                    block[row - rows.start] = 0
                    reasons[row] = result["error"]
            features[name], failed[name] = block, reasons
        manifest = self._manifest(shard, rows, got, markers, failed)
        store.write_shard(shard, features, manifest, failed)
        self.write_s += time.perf_counter() - start_time
        self.shards_written += 1

    def _manifest(self, shard, rows, got, markers, failed) -> list[dict]:
        old = {m["row"]: m for m in self.store.read_manifest_shard(shard)}
        out = []
        for row in rows:
            if row in got:
                r = got[row]
                ok = r["status"] == "ok"
                entry = {
                    "row": row,
                    "video_id": self.plan.video_ids[row],
                    **{k: _plain(r[k]) for k in META_KEYS if k in r},
                    "sampled_indices": np.asarray(r["sampled_indices"]).tolist() if ok else None,
                    "timestamps": np.asarray(r["timestamps"]).tolist() if ok else None,
                    **r.get("extra", {}),
                }
            else:
                entry = dict(old.get(row) or {"row": row, "video_id": self.plan.video_ids[row]})
            reasons, pending = [], False
            for name in self.store.encoders:
                if name in failed:
                    why = failed[name].get(row)
                else:
                    marker = markers[name]
                    why = marker["failed"].get(row) if marker else None
                    pending |= row not in self.store.covered_rows(name, shard, marker)
                if why:
                    reasons.append(why)
            entry["status"] = "failed" if reasons else "pending" if pending else "ok"
            entry["error"] = reasons[0] if reasons else None
            out.append(entry)
        return out
