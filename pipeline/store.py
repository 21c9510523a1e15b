"""The feature store: one Zarr v3 group, sharded float16 arrays, a Parquet manifest.

Layout (see README "Store layout")::

    STORE/
      zarr.json                  group attrs: format version, sampling rule, T, grid, shard size
      index/video_id             [N] strings, row -> video id
      features/<encoder>         [N, T, G*G, C] float16; chunk = 1 video; shard = shard_size videos
      _manifest/shard-00000.parquet   per-shard manifest rows (status, error, metadata)
      _commits/shard-00000.json       written last: the shard is done only when this exists
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

from pipeline.manifest import MANIFEST_SCHEMA, manifest_table

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
        """Manifest rows of every committed shard, sorted by row."""
        tables = [self._read_parquet(self._manifest_path(s)) for s in sorted(self.committed_shards())]
        if not tables:
            return MANIFEST_SCHEMA.empty_table()
        table = pa.concat_tables(tables, promote_options="default")
        return table.sort_by("row")

    def ok_rows(self) -> np.ndarray:
        table = self.manifest()
        status = np.asarray(table.column("status").to_pylist())
        return np.asarray(table.column("row").to_numpy())[status == "ok"].astype(np.int64)

    # ------------------------------------------------------------------ commits
    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _manifest_path(self, shard: int) -> str:
        return self._path("_manifest", f"shard-{shard:05d}.parquet")

    def _commit_path(self, shard: int) -> str:
        return self._path("_commits", f"shard-{shard:05d}.json")

    def _read_parquet(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as f:
            return pq.read_table(io.BytesIO(f.read()))

    def committed_shards(self) -> set[int]:
        pattern = self._path("_commits", "shard-*.json")
        return {int(posixpath.basename(p)[6:11]) for p in self.fs.glob(pattern)}

    def commit_info(self, shard: int) -> dict:
        with self.fs.open(self._commit_path(shard), "rb") as f:
            return json.loads(f.read())

    # ------------------------------------------------------------------ writing
    def write_shard(
        self,
        shard: int,
        features: Mapping[str, np.ndarray],
        manifest_rows: Sequence[Mapping[str, Any]],
    ) -> None:
        """Write one whole shard: every encoder's block, its manifest rows, then the commit marker.

        ``features[name]`` is [rows in shard, T, G*G, C]; rows of failed videos hold zeros (the
        fill value, so Zarr stores nothing for them). Order matters for crash safety: the commit
        marker is written last, so a shard without it is redone in full on resume.
        """
        rows = self.shard_rows(shard)
        missing = set(self.encoders) - set(features)
        if missing:
            raise StoreError(f"shard {shard}: no features for encoders {sorted(missing)}")
        for name in self.encoders:
            block = np.asarray(features[name], dtype=np.float16)
            expected = (len(rows), self.time_steps, self.grid * self.grid, self.width(name))
            if block.shape != expected:
                raise StoreError(f"shard {shard}, {name}: shape {block.shape}, expected {expected}")
            self.array(name)[rows.start : rows.stop] = block
        table = manifest_table(manifest_rows)
        if sorted(table.column("row").to_pylist()) != list(rows):
            raise StoreError(f"shard {shard}: manifest rows do not match rows {rows}")
        buf = io.BytesIO()
        pq.write_table(table, buf)
        self.fs.makedirs(self._path("_manifest"), exist_ok=True)
        with self.fs.open(self._manifest_path(shard), "wb") as f:
            f.write(buf.getvalue())
        status = table.column("status").to_pylist()
        marker = {
            "shard": shard,
            "rows": [rows.start, rows.stop],
            "ok": status.count("ok"),
            "failed": status.count("failed"),
            "fingerprints": {n: self.encoder_attrs(n).get("fingerprint") for n in self.encoders},
        }
        self.fs.makedirs(self._path("_commits"), exist_ok=True)
        with self.fs.open(self._commit_path(shard), "wb") as f:
            f.write(json.dumps(marker, sort_keys=True).encode())

    def consolidate_manifest(self) -> pa.Table:
        """Write ``manifest.parquet`` with every committed row, for users and other tools."""
        table = self.manifest()
        buf = io.BytesIO()
        pq.write_table(table, buf)
        with self.fs.open(self._path("manifest.parquet"), "wb") as f:
            f.write(buf.getvalue())
        return table
