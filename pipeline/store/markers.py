"""Commit markers and what they say: which rows of each encoder are committed, failed, pending.

A marker ``_commits/<encoder>/shard-00000.json`` is written last, after the shard's features and
manifest rows: ``{"rows": [start, stop], "fingerprint": ..., "failed": {row: reason}}``. It
commits the rows it covers, a prefix of its shard (a shard grows when videos are appended).
Everything that decides whether a row is done for an encoder reads markers through here.
"""

from __future__ import annotations

import json
import posixpath

import numpy as np

from pipeline.rows import FAILED, OK, PENDING
from pipeline.store.layout import StoreBase


class CommitMarkers(StoreBase):
    def commits(self, encoder: str, shard: int | None = None) -> dict[int, dict]:
        """Commit markers of one encoder: shard -> {"rows": [start, stop], "failed": {row: why}}.

        ``shard``: only that shard's marker (an empty dict when it has none).
        """
        if shard is not None:
            path = self._commit_path(encoder, shard)
            return {shard: self._read_marker(path)} if self.fs.exists(path) else {}
        paths = self._commit_glob(encoder)
        return {int(posixpath.basename(p)[6:11]): self._read_marker(p) for p in paths}

    def commit_marker(self, encoder: str, shard: int) -> dict | None:
        return self.commits(encoder, shard).get(shard)

    def _read_marker(self, path: str) -> dict:
        with self.fs.open(path, "rb") as f:
            marker = json.loads(f.read())
        marker["failed"] = {int(k): v for k, v in marker.get("failed", {}).items()}
        return marker

    def covered_rows(self, encoder: str, shard: int, marker: dict | None = None) -> range:
        """Rows of ``shard`` whose features for ``encoder`` are committed (a prefix of the shard)."""
        marker = marker if marker is not None else self.commit_marker(encoder, shard)
        if marker is None:
            return range(0)
        rows = self.shard_rows(shard)
        return range(rows.start, min(int(marker["rows"][1]), rows.stop))

    def committed_shards(self, encoder: str | None = None) -> set[int]:
        """Shards whose every row is committed, for ``encoder`` or (None) for every encoder."""
        names = [encoder] if encoder else self.encoders
        done = None
        for name in names:
            markers = self.commits(name)
            full = {
                s for s, m in markers.items() if self.covered_rows(name, s, m) == self.shard_rows(s)
            }
            done = full if done is None else done & full
        return done or set()

    def row_status(
        self, encoder: str, shard: int | None = None, markers: dict[int, dict] | None = None
    ) -> np.ndarray:
        """Per row, ``OK``, ``FAILED`` or ``PENDING`` for one encoder, from its commit markers.

        A row is ok when a marker covers it and does not list it as failed, failed when its
        marker lists it, pending when no marker covers it (never computed, or appended since).

        Args:
            encoder: an encoder of the store.
            shard: only that shard's rows (element 0 is its first row); None: every row.
            markers: the encoder's markers as ``commits`` returns them, when the caller has
                read them already; None reads them.

        Returns:
            An object array of ``pipeline.rows`` status strings, one per row.
        """
        rows = range(self.num_rows) if shard is None else self.shard_rows(shard)
        if markers is None:
            markers = self.commits(encoder, shard)
        status = np.full(len(rows), PENDING, dtype=object)
        for s, marker in markers.items():
            if shard is not None and s != shard:
                continue
            covered = self.covered_rows(encoder, s, marker)
            status[covered.start - rows.start : covered.stop - rows.start] = OK
            status[[r - rows.start for r in marker["failed"]]] = FAILED
        return status
