"""Writing a store: one whole shard at a time, then its manifest rows, then its commit markers.

Exactly one process writes a given shard (the job's driver), always as one whole-shard write:
two writers on one Zarr shard silently lose rows.
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.faults import fault_point
from pipeline.rows import OK, manifest_table
from pipeline.store.errors import StoreError
from pipeline.store.integrity import StoreIntegrity
from pipeline.store.layout import JOBS_DIR


def _failed_from_manifest(table: pa.Table) -> dict[int, str]:
    """Row -> reason for every row whose manifest status is not ok."""
    return {
        r: e or "failed"
        for r, s, e in zip(
            table.column("row").to_pylist(),
            table.column("status").to_pylist(),
            table.column("error").to_pylist(),
            strict=True,
        )
        if s != OK
    }


class StoreWriting(StoreIntegrity):
    def write_shard(
        self,
        shard: int,
        features: Mapping[str, np.ndarray],
        manifest_rows: Sequence[Mapping[str, Any]],
        failed: Mapping[str, Mapping[int, str]] | None = None,
    ) -> None:
        """Write one whole shard for some encoders, its manifest rows, then the commit markers.

        Order matters for crash safety: old markers go first and new ones last, so a shard
        interrupted anywhere in between is simply redone on resume.

        Args:
            shard: the shard number.
            features: encoder -> float16-able [rows in shard, T, G*G, C]; rows of failed videos
                hold zeros (the fill value, so Zarr stores nothing for them).
            manifest_rows: exactly one manifest row (``pipeline.rows.MANIFEST_SCHEMA`` keys,
                extra keys carried along) per row of the shard.
            failed: encoder -> {row: reason}; None: every row whose manifest status is not ok
                counts as failed for every encoder written.

        Raises:
            StoreError: no features, manifest rows that are not the shard's rows, a block of
                the wrong shape, or an encoder not in the store. Nothing is written then.
        """
        rows = self.shard_rows(shard)
        table = self._checked_manifest(shard, rows, features, manifest_rows)
        if failed is None:
            bad = _failed_from_manifest(table)
            failed = {name: bad for name in features}
        for name in features:  # invalidate first: a crash below leaves the shard pending
            if self.fs.exists(self._commit_path(name, shard)):
                self.fs.rm(self._commit_path(name, shard))
        for name, block in features.items():
            self.array(name)[rows.start : rows.stop] = np.asarray(block, dtype=np.float16)
            fault_point("after_features")
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self._write_bytes(self._manifest_path(shard), buf.getvalue())
        fault_point("after_manifest")
        for name in features:
            marker = {
                "rows": [rows.start, rows.stop],
                "fingerprint": self.encoder_attrs(name).get("fingerprint"),
                "failed": {str(r): why for r, why in sorted(failed.get(name, {}).items())},
                "files": self.file_records(name, shard),  # size + sha256, for `merv verify`
            }
            self._write_bytes(
                self._commit_path(name, shard), json.dumps(marker, sort_keys=True).encode()
            )
            fault_point("after_marker")

    def _checked_manifest(self, shard: int, rows: range, features, manifest_rows) -> pa.Table:
        """The shard's manifest table, once features and manifest rows fit the shard."""
        if not features:
            raise StoreError(f"shard {shard}: no features for any encoder")
        table = manifest_table(manifest_rows)
        if sorted(table.column("row").to_pylist()) != list(rows):
            raise StoreError(f"shard {shard}: manifest rows do not match rows {rows}")
        for name, block in features.items():
            expected = (len(rows), self.time_steps, self.grid * self.grid, self.width(name))
            if np.shape(block) != expected:
                raise StoreError(
                    f"shard {shard}, {name}: shape {np.shape(block)}, expected {expected}"
                )
        return table

    def write_job_file(self, name: str, data: bytes) -> None:
        """A job's own record beside the data (``_jobs/<name>``): config, summary."""
        self._write_bytes(self._path(JOBS_DIR, name), data)

    def consolidate_manifest(self) -> pa.Table:
        """Write ``manifest.parquet`` with every committed row, for users and other tools."""
        table = self.manifest()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self._write_bytes(self._path("manifest.parquet"), buf.getvalue())
        return table
