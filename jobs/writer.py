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
from pipeline.rows import FAILED, OK, PENDING, SCALAR_DECODE_COLUMNS
from pipeline.store import FeatureStore

META_KEYS = ("source", *SCALAR_DECODE_COLUMNS)  # copied from the decoded row to the manifest


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _failures(markers: dict[int, dict], shard: int) -> dict[int, str]:
    """Row -> reason of one shard's marker (as ``FeatureStore.commits(name, shard)`` gives it)."""
    return dict(markers[shard]["failed"]) if markers else {}


class ShardWriter:
    def __init__(self, store: FeatureStore, plan: ShardPlan, work: list[ShardWork]):
        self.store, self.plan = store, plan
        self.needs = {w.shard: w.encoders_by_row for w in work}
        self.pending: dict[int, dict[int, dict]] = {}
        self.write_s = 0.0

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
        rows = self.plan.shard_rows(shard)
        written = [e for e in store.encoders if any(e in needs[r] for r in got)]
        markers = {e: store.commits(e, shard) for e in store.encoders}
        features, failed = {}, {}
        for name in written:
            block = store.read(name, rows.start, rows.stop)  # rows this run did not compute
            reasons = _failures(markers[name], shard)
            for row, result in got.items():
                if name not in needs[row]:
                    continue
                reasons.pop(row, None)
                if result["status"] == OK:
                    block[row - rows.start] = result[f"feat:{name}"]
                else:
                    block[row - rows.start] = 0
                    reasons[row] = result["error"]
            features[name], failed[name] = block, reasons
        manifest = self._manifest(shard, rows, got, markers, failed)
        store.write_shard(shard, features, manifest, failed)
        self.write_s += time.perf_counter() - start_time

    def _entry(self, row: int, result: dict | None, old: dict[int, dict]) -> dict:
        """A row's manifest entry: from this run's result, else as the store has it."""
        if result is None:
            return dict(old.get(row) or {"row": row, "video_id": self.plan.video_ids[row]})
        ok = result["status"] == OK
        return {
            "row": row,
            "video_id": self.plan.video_ids[row],
            **{k: _plain(result[k]) for k in META_KEYS if k in result},
            "sampled_indices": np.asarray(result["sampled_indices"]).tolist() if ok else None,
            "timestamps": np.asarray(result["timestamps"]).tolist() if ok else None,
            **result.get("extra", {}),
        }

    def _manifest(self, shard, rows, got, markers, failed) -> list[dict]:
        """Manifest rows of the shard; a row's status is over every encoder of the store:
        failed if any failed it, else pending if any has not committed it, else ok."""
        old = {m["row"]: m for m in self.store.read_manifest_shard(shard)}
        encoders = self.store.encoders
        # Encoders this write leaves alone keep their committed status and failures.
        kept = {n: self.store.row_status(n, shard, markers[n]) for n in encoders if n not in failed}
        reasons_of = {
            n: failed[n] if n in failed else _failures(markers[n], shard) for n in encoders
        }
        out = []
        for row in rows:
            entry = self._entry(row, got.get(row), old)
            reasons = [why for n in encoders if (why := reasons_of[n].get(row))]
            pending = any(status[row - rows.start] == PENDING for status in kept.values())
            entry["status"] = FAILED if reasons else PENDING if pending else OK
            entry["error"] = reasons[0] if reasons else None
            out.append(entry)
        return out
