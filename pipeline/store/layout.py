"""Where everything lives in a store, and the base the store's parts build on.

The format version decides two things only: how the video ids are stored (``ids.py``) and the
dimension names of the feature arrays. Version 1 stores are read and grown in their own form.
"""

from __future__ import annotations

import io
import posixpath

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import zarr

from pipeline.corpus import ShardPlan
from pipeline.store.errors import StoreError
from pipeline.store.files import write_atomic
from pipeline.store.ids import ID_DIM, read_ids

FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)
JOBS_DIR = "_jobs"  # each job's own records: effective config, summary, Ray log
SAMPLING_RULE = "numpy.linspace(0, n_frames - 1, 32).astype(int); 16-frame encoders take [::2]"


def zarr_store(url: str):
    if "://" in url and not url.startswith("file://"):
        return zarr.storage.FsspecStore.from_url(url)
    return url.removeprefix("file://")


def feature_dims(version: int, encoder: str) -> tuple[str, ...]:
    """Dimension names of ``features/<encoder>``: per-encoder channel names from version 2 on,
    so that encoders of different widths live in one xarray Dataset."""
    if version == 1:
        return ("video", "time", "token", "channel")
    return (ID_DIM, "time", "token", f"channel_{encoder}")


class StoreBase:
    """Group attributes, shape facts, paths and file helpers shared by the store's parts."""

    def __init__(self, url: str, group: zarr.Group):
        self.url = url.rstrip("/")
        self.group = group
        self.fs, self.root = fsspec.core.url_to_fs(self.url)
        attrs = dict(group.attrs)
        version = attrs.get("merv_store_version")
        if version is None:
            raise StoreError(f"{url} is not a merv feature store (no merv_store_version attr)")
        if int(version) not in READABLE_VERSIONS:
            raise StoreError(
                f"store {url} has format version {version}; this merv-pipeline reads versions "
                f"{', '.join(map(str, READABLE_VERSIONS))}: upgrade merv-pipeline to read it"
            )
        self.attrs = attrs
        self.version: int = int(version)
        self.time_steps: int = int(attrs["time_steps"])
        self.grid: int = int(attrs["grid"])
        self.shard_size: int = int(attrs["shard_size"])
        self._video_ids: list[str] | None = None
        self._plan: ShardPlan | None = None

    # ------------------------------------------------------------------ shape facts
    @property
    def num_rows(self) -> int:
        return int(self.attrs["num_rows"])

    @property
    def video_ids(self) -> list[str]:
        if self._video_ids is None:
            self._video_ids = read_ids(self.group) if self.num_rows else []
        return self._video_ids

    @property
    def plan(self) -> ShardPlan:
        """Rows and shards of the store as it is now (the one home of shard arithmetic)."""
        if self._plan is None:
            self._plan = ShardPlan(tuple(self.video_ids), self.shard_size)
        return self._plan

    @property
    def num_shards(self) -> int:
        return self.plan.num_shards

    def shard_rows(self, shard: int) -> range:
        return self.plan.shard_rows(shard)

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

    def _create_feature_array(self, name: str, width: int, spec: dict) -> None:
        n, t, g = self.num_rows, self.time_steps, self.grid * self.grid
        arr = self.group.create_array(
            f"features/{name}",
            shape=(n, t, g, width),
            chunks=(1, t, g, width),
            shards=(self.shard_size, t, g, width),
            dtype="float16",
            fill_value=0.0,
            dimension_names=feature_dims(self.version, name),
        )
        arr.attrs.update({"spec": spec, "fingerprint": spec.get("fingerprint")})

    def _set_attr(self, key: str, value) -> None:
        self.group.attrs[key] = value
        self.attrs[key] = value

    # ------------------------------------------------------------------ paths and files
    def _path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def _manifest_path(self, shard: int) -> str:
        return self._path("_manifest", f"shard-{shard:05d}.parquet")

    def _commit_path(self, encoder: str, shard: int) -> str:
        return self._path("_commits", encoder, f"shard-{shard:05d}.json")

    def _commit_glob(self, encoder: str) -> list[str]:
        return self.fs.glob(self._path("_commits", encoder, "shard-*.json"))

    def _read_parquet(self, path: str) -> pa.Table:
        with self.fs.open(path, "rb") as f:
            return pq.read_table(io.BytesIO(f.read()))

    def _write_bytes(self, path: str, data: bytes) -> None:
        """Markers, manifest parts, job files: written atomically (``files.write_atomic``)."""
        write_atomic(self.fs, path, data)
