"""Integrity of committed shards: each commit marker records the size and sha256 of the Zarr
shard file it commits; here they are compared with the files as they are now.

- ``damaged(hashes=False)``: the cheap check (one listing per encoder, sizes only) that every
  ``merv extract`` on an existing store runs before planning;
- ``damaged(hashes=True, deep=True)``: ``merv verify [--deep]``, which also hashes every file
  and, deep, decodes every committed shard's rows;
- ``invalidate``: delete the markers of damaged shards, so that they are recomputed.

A shard whose rows are all zero (all failed) may have no file (Zarr writes no empty chunk): its
marker records ``"absent"`` and absence is accepted then.
"""

from __future__ import annotations

import posixpath
from typing import NamedTuple

from pipeline.store.errors import StoreError
from pipeline.store.files import file_digest
from pipeline.store.reading import StoreReading


class Damage(NamedTuple):
    encoder: str
    shard: int
    problem: str


class StoreIntegrity(StoreReading):
    def shard_file(self, encoder: str, shard: int) -> str:
        """Path in the store (relative) of ``encoder``'s Zarr shard file for ``shard``."""
        arr = self.array(encoder)
        key = arr.metadata.chunk_key_encoding.encode_chunk_key((shard, 0, 0, 0))
        return posixpath.join("features", encoder, key)

    def file_records(self, encoder: str, shard: int) -> dict:
        """What a new marker records of the shard file just written: size and sha256."""
        rel = self.shard_file(encoder, shard)
        path = self._path(rel)
        if not self.fs.exists(path):
            return {rel: "absent"}
        size = int(self.fs.size(path))
        return {rel: {"size": size, "sha256": file_digest(self.fs, path)}}

    def _sizes(self, encoder: str) -> dict[str, int]:
        """Relative path -> size of every file of ``encoder``'s array (one listing)."""
        base = self._path("features", encoder)
        if not self.fs.exists(base):
            return {}
        found = self.fs.find(base, detail=True)
        prefix = self.root.rstrip("/") + "/"
        return {p.removeprefix(prefix): int(info["size"]) for p, info in found.items()}

    def _file_problem(self, rel: str, want, sizes: dict[str, int], hashes: bool) -> str | None:
        have = sizes.get(rel)
        if want == "absent":
            return None if have is None else f"{rel}: a file where none was committed"
        if have is None:
            return f"missing file {rel}"
        if have != want["size"]:
            return f"{rel}: {have} bytes, committed {want['size']}"
        if hashes and file_digest(self.fs, self._path(rel)) != want["sha256"]:
            return f"{rel}: checksum differs from the committed one"
        return None

    def _decode_problem(self, encoder: str, shard: int) -> str | None:
        try:
            self.read(encoder, *self._span(shard))
        except StoreError as err:
            return f"rows do not decode ({str(err).split(': ', 1)[-1][:80]})"
        return None

    def _span(self, shard: int) -> tuple[int, int]:
        rows = self.shard_rows(shard)
        return rows.start, rows.stop

    def damaged(self, hashes: bool = False, deep: bool = False) -> list[Damage]:
        """Committed shards whose files do not match their markers, and unreadable markers.

        Args:
            hashes: also compare sha256 (reads every committed byte); else sizes only.
            deep: also decode every committed shard's rows.
        """
        out = []
        for name in self.encoders:
            markers, bad = self.scan_markers(name)
            out += [Damage(name, s, "unreadable commit marker") for s in bad]
            sizes = self._sizes(name)
            for shard, marker in sorted(markers.items()):
                problems = [
                    self._file_problem(rel, want, sizes, hashes)
                    for rel, want in sorted(marker["files"].items())
                ]
                if deep and not any(problems):
                    problems.append(self._decode_problem(name, shard))
                out += [Damage(name, shard, p) for p in problems if p]
        return sorted(out)

    def invalidate(self, damage: list[Damage]) -> None:
        """Delete the commit markers of damaged shards (they count as not committed), then
        their shard files: every row of such a shard is recomputed, and the writer, which reads
        back the rows a run does not compute, must not meet an undecodable file."""
        for name, shard in sorted({(d.encoder, d.shard) for d in damage}):
            for path in (self._commit_path(name, shard), self._path(self.shard_file(name, shard))):
                if self.fs.exists(path):
                    self.fs.rm(path)
