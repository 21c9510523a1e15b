"""The feature store: one Zarr v3 group, sharded float16 arrays, a Parquet manifest.

Layout (see README "Store layout")::

    STORE/
      zarr.json                  group attrs: format version, sampling rule, T, grid, shard size
      index/video_id             [N] strings, row -> video id
      features/<encoder>         [N, T, G*G, C] float16; chunk = 1 video; shard = shard_size videos
      _manifest/shard-00000.parquet   per-shard manifest rows (status, error, metadata)
      _commits/<encoder>/shard-00000.json   written last: rows committed for that encoder
      manifest.parquet           all rows, consolidated at the end of a job

Exactly one process writes a given shard (the job's driver), always as one whole-shard write:
two writers on one Zarr shard silently lose rows.
"""

from __future__ import annotations

import io
import json
import posixpath
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import fsspec
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from pipeline.faults import fault_point
from pipeline.rows import MANIFEST_SCHEMA, manifest_table

FORMAT_VERSION = 1
SAMPLING_RULE = "numpy.linspace(0, n_frames - 1, 32).astype(int); 16-frame encoders take [::2]"


class StoreError(RuntimeError):
    pass


def _zarr_store(url: str):
    if "://" in url and not url.startswith("file://"):
        return zarr.storage.FsspecStore.from_url(url)
    return url.removeprefix("file://")


class FeatureStore:
    def __init__(self, url: str, group: zarr.Group):
        self.url = url.rstrip("/")
        self.group = group
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        attrs = dict(group.attrs)
        if attrs.get("merv_store_version") is None:
            raise StoreError(f"{url} is not a merv feature store (no merv_store_version attr)")
        self.attrs = attrs
        self.time_steps: int = int(attrs["time_steps"])
        self.grid: int = int(attrs["grid"])
        self.shard_size: int = int(attrs["shard_size"])
        self._video_ids: list[str] | None = None

    # ------------------------------------------------------------------ create / open
    @classmethod
    def create(
        cls,
        url: str,
        video_ids: Sequence[str],
        encoders: Mapping[str, tuple[int, dict]],
        shard_size: int,
        time_steps: int = 16,
        grid: int = 8,
        attrs: Mapping[str, Any] | None = None,
    ) -> FeatureStore:
        """A new store with one array per encoder; ``encoders`` maps name -> (width, spec dict)."""
        group = zarr.open_group(store=_zarr_store(url), mode="w-", zarr_format=3)
        group.attrs.update(
            {
                "merv_store_version": FORMAT_VERSION,
                "sampling": SAMPLING_RULE,
                "time_steps": time_steps,
                "grid": grid,
                "shard_size": shard_size,
                "num_rows": len(video_ids),
                "encoders": list(encoders),
                **(attrs or {}),
            }
        )
        n = len(video_ids)
        index = group.create_array("index/video_id", shape=(n,), dtype=str, chunks=(max(n, 1),))
        if n:
            index[:] = np.asarray(list(video_ids), dtype=object)
        store = cls(url, group)
        for name, (width, spec) in encoders.items():
            store._create_feature_array(name, width, spec)
        return store

    def _create_feature_array(self, name: str, width: int, spec: dict) -> None:
        n, t, g = self.num_rows, self.time_steps, self.grid * self.grid
        arr = self.group.create_array(
            f"features/{name}",
            shape=(n, t, g, width),
            chunks=(1, t, g, width),
            shards=(self.shard_size, t, g, width),
            dtype="float16",
            fill_value=0.0,
            dimension_names=("video", "time", "token", "channel"),
        )
        arr.attrs.update({"spec": spec, "fingerprint": spec.get("fingerprint")})

    @classmethod
    def open(cls, url: str, mode: str = "r") -> FeatureStore:
        try:
            group = zarr.open_group(store=_zarr_store(url), mode=mode, zarr_format=3)
        except FileNotFoundError as err:
            raise StoreError(f"no feature store at {url}: run `merv extract` first") from err
        return cls(url, group)

    @staticmethod
    def exists(url: str) -> bool:
        fs, root = fsspec.core.url_to_fs(url)
        return fs.exists(posixpath.join(root, "zarr.json"))

    # ------------------------------------------------------------------ shape facts
    @property
    def num_rows(self) -> int:
        return int(self.attrs["num_rows"])

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_size)

    @property
    def video_ids(self) -> list[str]:
        if self._video_ids is None:
            arr = self.group["index/video_id"]
            self._video_ids = [str(v) for v in arr[:]] if self.num_rows else []
        return self._video_ids

    @property
    def encoders(self) -> list[str]:
        return list(self.attrs["encoders"])

    def array(self, encoder: str) -> zarr.Array:
        try:
            return self.group[f"features/{encoder}"]
        except KeyError as err:
            raise StoreError(
                f"encoder {encoder!r} is not in store {self.url}; it has {self.encoders}"
            ) from err

    def width(self, encoder: str) -> int:
        return int(self.array(encoder).shape[-1])

    def encoder_attrs(self, encoder: str) -> dict:
        return dict(self.array(encoder).attrs)

    def shard_rows(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.num_rows))

    # ------------------------------------------------------------------ reading
    def read(self, encoder: str, start: int, stop: int) -> np.ndarray:
        return self.array(encoder)[start:stop]

    def read_rows(self, encoder: str, rows: Iterable[int]) -> np.ndarray:
        rows = np.asarray(list(rows), dtype=np.int64)
        arr = self.array(encoder)
        if rows.size == 0:
            return np.zeros((0, *arr.shape[1:]), dtype=np.float16)
        # One read per touched shard: far cheaper than per-row reads of a sharded array.
        out = np.empty((rows.size, *arr.shape[1:]), dtype=np.float16)
        shards = rows // self.shard_size
        for shard in np.unique(shards):
            sel = np.nonzero(shards == shard)[0]
            lo, hi = int(rows[sel].min()), int(rows[sel].max()) + 1
            block = arr[lo:hi]
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

    def ok_rows(self, encoders: Sequence[str] | None = None) -> np.ndarray:
        """Rows that decoded and whose features are committed, not failed, for every encoder."""
        table = self.manifest()
        status = np.asarray(table.column("status").to_pylist(), dtype=object)
        rows = np.asarray(table.column("row").to_numpy(), dtype=np.int64)[status == "ok"]
        keep = np.ones(rows.size, dtype=bool)
        for name in encoders or self.encoders:
            markers = self.commits(name)
            good = np.zeros(self.num_rows, dtype=bool)
            for shard, marker in markers.items():
                covered = self.covered_rows(name, shard, marker)
                good[covered.start : covered.stop] = True
                good[list(marker["failed"])] = False
            keep &= good[rows]
        return rows[keep]

    # ------------------------------------------------------------------ growth
    def append_videos(self, video_ids: Sequence[str]) -> None:
        """Add rows at the end (existing rows never move), growing every feature array."""
        if not video_ids:
            return
        old = self.num_rows
        n = old + len(video_ids)
        index = self.group["index/video_id"]
        # The index is one chunk; rewrite it whole at the new length.
        everything = np.asarray(self.video_ids + list(video_ids), dtype=object)
        index.resize((n,))
        index[:] = everything
        for name in self.encoders:
            arr = self.array(name)
            arr.resize((n, *arr.shape[1:]))
        self.group.attrs["num_rows"] = n
        self.attrs["num_rows"] = n
        self._video_ids = None

    def add_encoder(self, name: str, width: int, spec: dict) -> None:
        if name in self.encoders:
            raise StoreError(f"encoder {name!r} is already in store {self.url}")
        self._create_feature_array(name, width, spec)
        encoders = [*self.encoders, name]
        self.group.attrs["encoders"] = encoders
        self.attrs["encoders"] = encoders

    def drop_encoder(self, name: str) -> None:
        """Remove an encoder's array and commit markers (to re-extract it with a new spec)."""
        for path in self.fs.glob(self._path("_commits", name, "shard-*.json")):
            self.fs.rm(path)
        del self.group[f"features/{name}"]
        encoders = [e for e in self.encoders if e != name]
        self.group.attrs["encoders"] = encoders
        self.attrs["encoders"] = encoders

    # ------------------------------------------------------------------ commits
    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _manifest_path(self, shard: int) -> str:
        return self._path("_manifest", f"shard-{shard:05d}.parquet")

    def _commit_path(self, encoder: str, shard: int) -> str:
        return self._path("_commits", encoder, f"shard-{shard:05d}.json")

    def _read_parquet(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as f:
            return pq.read_table(io.BytesIO(f.read()))

    def _write_bytes(self, path: str, data: bytes) -> None:
        self.fs.makedirs(posixpath.dirname(path), exist_ok=True)
        with self.fs.open(path, "wb") as f:
            f.write(data)

    def commits(self, encoder: str) -> dict[int, dict]:
        """Commit markers of one encoder: shard -> {"rows": [start, stop], "failed": {row: why}}."""
        paths = self.fs.glob(self._path("_commits", encoder, "shard-*.json"))
        return {int(posixpath.basename(p)[6:11]): self._read_marker(p) for p in paths}

    def commit_marker(self, encoder: str, shard: int) -> dict | None:
        path = self._commit_path(encoder, shard)
        return self._read_marker(path) if self.fs.exists(path) else None

    def _read_marker(self, path: str) -> dict:
        with self.fs.open(path, "rb") as f:
            marker = json.loads(f.read())
        marker["failed"] = {int(k): v for k, v in marker.get("failed", {}).items()}
        return marker

    def write_job_file(self, name: str, data: bytes) -> None:
        """A job's own record beside the data (``_jobs/<name>``): config, summary."""
        self._write_bytes(self._path("_jobs", name), data)

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

    # ------------------------------------------------------------------ writing
    def write_shard(
        self,
        shard: int,
        features: Mapping[str, np.ndarray],
        manifest_rows: Sequence[Mapping[str, Any]],
        failed: Mapping[str, Mapping[int, str]] | None = None,
    ) -> None:
        """Write one whole shard for some encoders, its manifest rows, then the commit markers.

        ``features[name]`` is [rows in shard, T, G*G, C]; rows of failed videos hold zeros (the
        fill value, so Zarr stores nothing for them). ``failed[name]`` maps row -> reason; by
        default every row whose manifest status is not ok counts as failed. Order matters for
        crash safety: old markers go first and new ones last, so a shard interrupted anywhere in
        between is simply redone on resume.
        """
        rows = self.shard_rows(shard)
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
        if failed is None:
            bad = {
                r: e or "failed"
                for r, s, e in zip(
                    table.column("row").to_pylist(),
                    table.column("status").to_pylist(),
                    table.column("error").to_pylist(),
                    strict=True,
                )
                if s != "ok"
            }
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
            }
            self._write_bytes(
                self._commit_path(name, shard), json.dumps(marker, sort_keys=True).encode()
            )
            fault_point("after_marker")

    def read_manifest_shard(self, shard: int) -> list[dict]:
        path = self._manifest_path(shard)
        return self._read_parquet(path).to_pylist() if self.fs.exists(path) else []

    def consolidate_manifest(self) -> pa.Table:
        """Write ``manifest.parquet`` with every committed row, for users and other tools."""
        table = self.manifest()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        with self.fs.open(self._path("manifest.parquet"), "wb") as f:
            f.write(buf.getvalue())
        return table
