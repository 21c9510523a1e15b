"""The manifest: one row per video with its status and decode metadata (Parquet)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

MANIFEST_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),  # "ok" | "failed"
        ("error", pa.string()),  # one-line reason when failed, else null
        ("n_frames", pa.int64()),
        ("fps", pa.float64()),
        ("duration", pa.float64()),
        ("height", pa.int64()),
        ("width", pa.int64()),
        ("decoder", pa.string()),
        ("sampled_indices", pa.list_(pa.int64())),
        ("timestamps", pa.list_(pa.float64())),
    ]
)


def manifest_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows -> table with the schema's columns first; extra keys (e.g. labels) are carried along."""
    known = [f.name for f in MANIFEST_SCHEMA]
    extra = sorted({k for r in rows for k in r} - set(known))
    columns = {f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in MANIFEST_SCHEMA}
    for key in extra:
        columns[key] = pa.array([r.get(key) for r in rows])
    return pa.table(columns)
