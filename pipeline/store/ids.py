"""The row -> video id index, in the form of the store's format version.

- version 2: ``index/video_id`` is uint8 [N, L], each id's UTF-8 bytes zero-padded to the
  longest (L grows when a longer id is appended): a numeric array that every Zarr v3 reader
  opens (tensorstore's zarr3 driver has no string data type). ``features/video_id`` holds the
  same ids as [N] strings: the ``video_id`` coordinate of the features group for xarray.
- version 1: ``index/video_id`` is [N] strings, and there is no ``features/video_id``.

Both arrays are one chunk, rewritten whole when videos are appended.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import zarr

from pipeline.store.errors import StoreError

INDEX = "index/video_id"
COORDINATE = "features/video_id"
ID_DIM = "video_id"  # the first dimension of every features/ array from version 2 on


def encode_ids(video_ids: Sequence[str]) -> np.ndarray:
    """uint8 [N, L]: UTF-8 bytes of each id, zero-padded to the longest (L >= 1)."""
    encoded = [str(v).encode("utf-8") for v in video_ids]
    if any(b"\0" in e for e in encoded):
        raise StoreError("video ids must not contain NUL characters")
    width = max([1, *map(len, encoded)])
    out = np.zeros((len(encoded), width), dtype=np.uint8)
    for i, e in enumerate(encoded):
        out[i, : len(e)] = np.frombuffer(e, dtype=np.uint8)
    return out


def decode_ids(data: np.ndarray) -> list[str]:
    """The inverse of ``encode_ids``."""
    data = np.ascontiguousarray(data, dtype=np.uint8)
    if data.shape[0] == 0:
        return []
    fixed = data.view(f"S{data.shape[1]}")[:, 0]  # numpy drops the trailing zeros
    return [b.decode("utf-8") for b in fixed.tolist()]


def _strings(video_ids: Sequence[str]) -> np.ndarray:
    return np.asarray(list(video_ids), dtype=object)


def create_ids(group: zarr.Group, version: int, video_ids: Sequence[str]) -> None:
    """The id arrays of a new store."""
    n = len(video_ids)
    if version == 1:
        index = group.create_array(INDEX, shape=(n,), dtype=str, chunks=(max(n, 1),))
        if n:
            index[:] = _strings(video_ids)
        return
    data = encode_ids(video_ids)
    index = group.create_array(
        INDEX,
        shape=data.shape,
        dtype="uint8",
        chunks=(max(n, 1), data.shape[1]),
        fill_value=0,
        dimension_names=(ID_DIM, "utf8_byte"),
    )
    index.attrs["encoding"] = "utf-8, zero-padded"
    coordinate = group.create_array(
        COORDINATE, shape=(n,), dtype=str, chunks=(max(n, 1),), dimension_names=(ID_DIM,)
    )
    if n:
        index[:] = data
        coordinate[:] = _strings(video_ids)


def rewrite_ids(group: zarr.Group, version: int, video_ids: Sequence[str]) -> None:
    """Resize the id arrays to ``video_ids`` (the old ids first) and write them whole."""
    n = len(video_ids)
    index = group[INDEX]
    if version == 1:
        index.resize((n,))
        index[:] = _strings(video_ids)
        return
    data = encode_ids(video_ids)
    index.resize(data.shape)
    index[:] = data
    coordinate = group[COORDINATE]
    coordinate.resize((n,))
    coordinate[:] = _strings(video_ids)


def read_ids(group: zarr.Group) -> list[str]:
    """Row -> video id, from either form of ``index/video_id``."""
    data = group[INDEX][:]
    if data.ndim == 2:
        return decode_ids(data)
    return [str(v) for v in data]
