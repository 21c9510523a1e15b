"""Reading a store: feature rows in any order, the manifest, and the rows that are ok."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pyarrow as pa

from pipeline.rows import MANIFEST_SCHEMA, OK
from pipeline.store.errors import StoreError
from pipeline.store.markers import CommitMarkers


class StoreReading(CommitMarkers):
    def read(self, encoder: str, start: int, stop: int) -> np.ndarray:
        """Rows ``start:stop`` of ``encoder`` (StoreError, one line, when they do not decode)."""
        return self._decoded(encoder, self.array(encoder), start, stop)

    def _decoded(self, encoder: str, arr, lo: int, hi: int) -> np.ndarray:
        try:
            return arr[lo:hi]
        except (ValueError, RuntimeError, OSError, EOFError) as err:  # zarr / numcodecs errors
            shards = sorted({self.plan.shard_of(lo), self.plan.shard_of(max(lo, hi - 1))})
            where = " to ".join(map(str, shards))
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise StoreError(
                f"store {self.url}: {encoder} shard {where} (rows {lo}:{hi}) is damaged: "
                f"{reason[:120]}; run `merv verify {self.url}`"
            ) from None

    def read_rows(self, encoder: str, rows: Iterable[int]) -> np.ndarray:
        """Features of ``rows`` in the order given (repeats allowed), one read per shard touched.

        Args:
            encoder: an encoder of the store.
            rows: row numbers, any order.

        Returns:
            float16 [len(rows), T, G*G, C]; rows that failed or are pending hold zeros.

        Raises:
            StoreError: the store has no such encoder.
        """
        rows = np.asarray(list(rows), dtype=np.int64)
        arr = self.array(encoder)
        if rows.size == 0:
            return np.zeros((0, *arr.shape[1:]), dtype=np.float16)
        # One read per touched shard: far cheaper than per-row reads of a sharded array.
        out = np.empty((rows.size, *arr.shape[1:]), dtype=np.float16)
        shards = self.plan.shard_of(rows)
        for shard in np.unique(shards):
            sel = np.nonzero(shards == shard)[0]
            lo, hi = int(rows[sel].min()), int(rows[sel].max()) + 1
            block = self._decoded(encoder, arr, lo, hi)
            out[sel] = block[rows[sel] - lo]
        return out

    def manifest(self) -> pa.Table:
        """Manifest rows of every shard with a manifest, sorted by row."""
        paths = sorted(self.fs.glob(self._path("_manifest", "shard-*.parquet")))
        tables = [self._read_parquet(p) for p in paths]
        if not tables:
            return MANIFEST_SCHEMA.empty_table()
        table = pa.concat_tables(tables, promote_options="default")
        return table.sort_by("row")

    def read_manifest_shard(self, shard: int) -> list[dict]:
        path = self._manifest_path(shard)
        return self._read_parquet(path).to_pylist() if self.fs.exists(path) else []

    def ok_rows(self, encoders: Sequence[str] | None = None) -> np.ndarray:
        """Rows whose features are committed and not failed for every one of ``encoders``.

        A row failed or pending only for an encoder not asked for still counts.

        Args:
            encoders: the encoders that must all have the row; None or empty: every encoder.

        Returns:
            int64 row numbers, ascending.

        Raises:
            StoreError: an encoder is not in the store.
        """
        keep = np.ones(self.num_rows, dtype=bool)
        for name in encoders or self.encoders:
            self.array(name)  # an unknown encoder is an error, not an empty result
            keep &= self.row_status(name) == OK
        return np.nonzero(keep)[0].astype(np.int64)
