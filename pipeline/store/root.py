"""A store whose root ``zarr.json`` is gone but whose data is there: refused, or rebuilt.

Every attribute of the root group can be recovered from what remains: the per-encoder arrays'
``zarr.json`` (shape: time steps, grid, rows; shard shape: shard size; attrs: spec and
fingerprint), ``index/video_id`` (its form gives the format version) and ``_jobs/extract.yaml``
(``num_frames``). The encoders' order is the order their array metadata was first written.
Opening such a store is refused in one line naming ``merv verify STORE --repair-root``.
"""

from __future__ import annotations

import json
import math
import posixpath

import fsspec
import yaml
import zarr

from pipeline.store.errors import StoreError
from pipeline.store.layout import JOBS_DIR, SAMPLING_RULE, zarr_store

DATA_DIRS = ("features", "index", "_commits")


def missing_root(url: str) -> bool:
    """True when ``url`` has store data but no root ``zarr.json``."""
    fs, root = fsspec.core.url_to_fs(url)
    if fs.exists(posixpath.join(root, "zarr.json")):
        return False
    return any(fs.exists(posixpath.join(root, d)) for d in DATA_DIRS)


def refuse_missing_root(url: str) -> None:
    if missing_root(url):
        raise StoreError(
            f"store {url} has data but no root zarr.json (its metadata was lost); rebuild it "
            f"with `merv verify {url} --repair-root`"
        )


def _read_json(fs, path: str) -> dict:
    with fs.open(path, "rb") as f:
        return json.loads(f.read())


def _feature_arrays(fs, root: str) -> list[tuple[str, dict]]:
    """(encoder, array metadata) in the order the arrays were created."""
    paths = fs.glob(posixpath.join(root, "features", "*", "zarr.json"))
    found = []
    for path in paths:
        meta = _read_json(fs, path)
        name = posixpath.basename(posixpath.dirname(path))
        if meta.get("node_type") == "array" and name != "video_id" and len(meta["shape"]) == 4:
            found.append((fs.modified(path).timestamp(), name, meta))
    return [(name, meta) for _, name, meta in sorted(found, key=lambda t: (t[0], t[1]))]


def _num_frames(fs, root: str) -> int | None:
    path = posixpath.join(root, JOBS_DIR, "extract.yaml")
    if not fs.exists(path):
        return None
    with fs.open(path, "rb") as f:
        value = (yaml.safe_load(f.read()) or {}).get("extract", {}).get("num_frames")
    return None if value is None else int(value)


def root_attrs(url: str) -> dict:
    """The root group's attributes, recovered from the arrays (see the module docstring)."""
    fs, root = fsspec.core.url_to_fs(url)
    arrays = _feature_arrays(fs, root)
    index_path = posixpath.join(root, "index", "video_id", "zarr.json")
    if not arrays or not fs.exists(index_path):
        raise StoreError(f"store {url}: no feature arrays or no index to rebuild the root from")
    index = _read_json(fs, index_path)
    _, first = arrays[0]
    shape = first["shape"]
    shard = first["chunk_grid"]["configuration"]["chunk_shape"]
    attrs = {
        "merv_store_version": 2 if len(index["shape"]) == 2 else 1,
        "sampling": SAMPLING_RULE,
        "time_steps": int(shape[1]),
        "grid": math.isqrt(int(shape[2])),
        "shard_size": int(shard[0]),
        "num_rows": int(index["shape"][0]),
        "encoders": [name for name, _ in arrays],
    }
    num_frames = _num_frames(fs, root)
    if num_frames is not None:
        attrs["num_frames"] = num_frames
    return attrs


def rebuild_root(url: str) -> dict:
    """Write the root ``zarr.json`` of a store that lost it; returns its attributes."""
    if not missing_root(url):
        raise StoreError(f"store {url}: nothing to rebuild (root present, or no data)")
    attrs = root_attrs(url)
    group = zarr.open_group(store=zarr_store(url), mode="a", zarr_format=3)
    group.attrs.update(attrs)
    return attrs
