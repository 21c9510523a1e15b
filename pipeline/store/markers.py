"""Commit markers and what they say: which rows of each encoder are committed, failed, pending.

A marker ``_commits/<encoder>/shard-00000.json`` is written last, after the shard's features and
manifest rows: ``{"rows": [start, stop], "fingerprint": ..., "failed": {row: reason},
"files": {path in the store: {"size": bytes, "sha256": hex} or "absent"}}`` (``files``: the
encoder's Zarr shard file as written; markers of older versions have none). It commits the rows
it covers, a prefix of its shard (a shard grows when videos are appended). A marker that cannot
be read (empty, not JSON, wrong shape) commits nothing: a warning is logged and the shard is
recomputed. Everything that decides whether a row is done for an encoder reads markers here.
"""

from __future__ import annotations

import json
import logging
import posixpath

import numpy as np

from pipeline.rows import FAILED, OK, PENDING
from pipeline.store.layout import StoreBase

log = logging.getLogger(__name__)


def parse_marker(data: bytes) -> dict | None:
    """A marker's content, or None when it is not a well-formed marker."""
    try:
        marker = json.loads(data)
        start, stop = marker["rows"]
        if not all(type(v) is int for v in (start, stop)) or not 0 <= start <= stop:
            return None
        failed = {int(k): str(v) for k, v in marker.get("failed", {}).items()}
        files = marker.get("files", {})
        if not isinstance(files, dict) or not all(
            v == "absent" or (isinstance(v, dict) and {"size", "sha256"} <= set(v))
            for v in files.values()
        ):
            return None
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return {**marker, "failed": failed, "files": files}


class CommitMarkers(StoreBase):
    def commits(self, encoder: str, shard: int | None = None) -> dict[int, dict]:
        """Commit markers of one encoder: shard -> {"rows": [start, stop], "failed": {row: why}}
        (their ``files`` records are read by ``scan_markers``); unreadable ones are left out.

        ``shard``: only that shard's marker (an empty dict when it has none).
        """
        good, bad = self.scan_markers(encoder, shard)
        warned = self.__dict__.setdefault("_warned_markers", set())
        for s in bad:
            if (encoder, s) in warned:
                continue
            warned.add((encoder, s))
            log.warning(
                "store %s: commit marker of %s shard %d is unreadable; counting the shard as "
                "not committed (the next `merv extract` recomputes it)",
                self.url,
                encoder,
                s,
            )
        return {s: {k: v for k, v in m.items() if k != "files"} for s, m in good.items()}

    def scan_markers(self, encoder: str, shard: int | None = None) -> tuple[dict, list[int]]:
        """(shard -> marker for the readable markers, shards whose marker is unreadable)."""
        if shard is not None:
            path = self._commit_path(encoder, shard)
            paths = [path] if self.fs.exists(path) else []
        else:
            paths = self._commit_glob(encoder)
        good, bad = {}, []
        for path in paths:
            s = int(posixpath.basename(path)[6:11])
            marker = self._read_marker(path)
            if marker is None:
                bad.append(s)
            else:
                good[s] = marker
        return good, bad

    def commit_marker(self, encoder: str, shard: int) -> dict | None:
        return self.commits(encoder, shard).get(shard)

    def _read_marker(self, path: str) -> dict | None:
        try:
            with self.fs.open(path, "rb") as f:
                return parse_marker(f.read())
        except FileNotFoundError:
            return None

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
