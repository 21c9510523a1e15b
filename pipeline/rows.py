"""The row schema: every column a video's row carries on its way from the input to the store.

One video is one row all along the data path, and this module is the only place its columns
are named:

- work rows (planning -> decode tasks): ``WORK_SCHEMA``, an Arrow schema, a chunk of rows at a
  time, so a million planned videos cost tens of MB on the driver;
- decoded rows (decode tasks -> encoder actors -> driver): the work columns plus ``frames``,
  ``status``, ``error`` and ``DECODE_COLUMNS``, with per-stage timings (``TIMING_COLUMNS``);
- manifest rows (driver -> store): ``MANIFEST_SCHEMA``, then the input's own columns (label,
  ...) and the decode facts (``clip_start``, ``rotation``, ...) as extra columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pyarrow as pa

OK, FAILED, PENDING = "ok", "failed", "pending"  # a row's status, per encoder and overall

WORK_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("start", pa.float64()),  # clip bounds in seconds; NaN = none
        ("end", pa.float64()),
        ("extra", pa.string()),  # JSON: the input's own columns, carried into the manifest
        ("encoders", pa.string()),  # comma list: the encoders this row needs in this run
    ]
)

# What decoding learns about a video, in the manifest's order.
DECODE_COLUMNS = (
    "n_frames",
    "fps",
    "duration",
    "height",
    "width",
    "decoder",
    "sampled_indices",
    "timestamps",
)
TIMING_COLUMNS = ("decode_s", "encode_s", "idle_s")  # seconds per row, for telemetry only

MANIFEST_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("status", pa.string()),  # ok | failed | pending
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
MANIFEST_COLUMNS = tuple(MANIFEST_SCHEMA.names)
# Decode facts that are scalars (the sampled indices and timestamps are lists, kept only for
# rows that decoded).
SCALAR_DECODE_COLUMNS = tuple(
    c for c in DECODE_COLUMNS if c not in ("sampled_indices", "timestamps")
)


def manifest_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    """Rows -> table with the schema's columns first; extra keys (e.g. labels) are carried along."""
    extra = sorted({k for r in rows for k in r} - set(MANIFEST_COLUMNS))
    columns = {
        f.name: pa.array([r.get(f.name) for r in rows], type=f.type) for f in MANIFEST_SCHEMA
    }
    for key in extra:
        columns[key] = pa.array([r.get(key) for r in rows])
    return pa.table(columns)


def work_table(
    work: Iterable[Any], video_ids: Sequence[str], items: Sequence[Any], chunk_rows: int = 65_536
) -> pa.Table:
    """Work rows: one per video to decode, as Arrow columns built a chunk at a time, so a million
    videos cost tens of MB on the driver instead of a million Python dicts.

    ``work``: shards to run (``.rows`` and ``.encoders_by_row``, see ``jobs.planning``);
    ``video_ids``: the store's row -> id; ``items``: the listed inputs (``VideoItem``).
    """
    by_id = {it.video_id: it for it in items}
    nan = float("nan")
    chunks, cols = [], None

    def flush():
        if cols and cols["row"]:
            chunks.append(pa.table(cols, schema=WORK_SCHEMA))

    for w in work:
        for row in w.rows:
            if cols is None or len(cols["row"]) >= chunk_rows:
                flush()
                cols = {name: [] for name in WORK_SCHEMA.names}
            vid = video_ids[row]
            item = by_id.get(vid)
            cols["row"].append(row)
            cols["video_id"].append(vid)
            cols["source"].append(item.source if item else "")  # no source: fails with a reason
            cols["start"].append(item.start if item and item.start is not None else nan)
            cols["end"].append(item.end if item and item.end is not None else nan)
            cols["extra"].append(
                json.dumps(item.extra, sort_keys=True, default=str) if item and item.extra else "{}"
            )
            cols["encoders"].append(",".join(w.encoders_by_row[row]))
    flush()
    return pa.concat_tables(chunks) if chunks else WORK_SCHEMA.empty_table()
