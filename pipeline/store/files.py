"""File helpers of the store: atomic small writes and shard file checksums.

Markers, manifest parts and job files are written whole under a temporary name in the same
folder, then renamed, so a reader (or a full disk) never sees half a file: ``os.replace`` on a
local disk, write then ``fs.mv`` on other fsspec filesystems. On object stores a single PUT is
already atomic (an object appears whole or not at all), so they are written directly.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import uuid

OBJECT_STORES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oss", "r2")
CHUNK = 8 * 2**20


def _protocols(fs) -> tuple[str, ...]:
    proto = fs.protocol
    return (proto,) if isinstance(proto, str) else tuple(proto)


def write_atomic(fs, path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` so that ``path`` holds either the old bytes or all the new."""
    protocols = _protocols(fs)
    if any(p in OBJECT_STORES for p in protocols):
        with fs.open(path, "wb") as f:
            f.write(data)
        return
    folder = posixpath.dirname(path)
    fs.makedirs(folder, exist_ok=True)
    tmp = posixpath.join(folder, f".{posixpath.basename(path)}.tmp-{uuid.uuid4().hex}")
    try:
        if "file" in protocols or "local" in protocols:
            with open(tmp, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        else:
            with fs.open(tmp, "wb") as f:
                f.write(data)
            fs.mv(tmp, path)
    except BaseException:
        if fs.exists(tmp):
            fs.rm(tmp)
        raise


def file_digest(fs, path: str) -> str:
    """``sha256:<hex>`` of a file, read in 8 MiB pieces."""
    h = hashlib.sha256()
    with fs.open(path, "rb") as f:
        while piece := f.read(CHUNK):
            h.update(piece)
    return "sha256:" + h.hexdigest()
