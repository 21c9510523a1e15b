"""The row schema: every column a video's row carries on its way from the input to the store.

One video is one row all along the data path, and this module is the only place its columns
are named:

- work rows (planning -> decode tasks): ``WORK_SCHEMA``, an Arrow schema, a chunk of rows at a
  time, so a million planned videos cost tens of MB on the driver;
- decoded rows (decode tasks -> encoder actors -> driver): the work columns but
  ``LISTING_COLUMNS``, plus ``frames``, ``status``, ``error`` and ``DECODE_COLUMNS``, with
  per-stage timings (``TIMING_COLUMNS``); the decode facts go into ``extra``;
- manifest rows (driver -> store): ``MANIFEST_SCHEMA``, then the input's own columns (label,
  ...) and the decode facts (``clip_start``, ``rotation``, ...) as extra columns.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

if TYPE_CHECKING:
    from pipeline.sources.item import VideoItem

OK, FAILED, PENDING = "ok", "failed", "pending"  # a row's status, per encoder and overall

# How the decode task reaches a row's bytes, from the listed item's typed fields
# (pipeline.sources.item). Work rows only: the decode task reads and drops them.
_LISTING_FIELDS = [
    ("source_kind", pa.string()),  # file | url | tar-member
    ("member_shard", pa.string()),  # tar-member: its shard's path or URL, else ""
    ("member_offset", pa.int64()),  # tar-member: first byte of its data, else -1
    ("member_size", pa.int64()),  # tar-member: its length in bytes, else -1
    ("storage_options", pa.string()),  # JSON: fsspec options for url and tar-member sources
    ("listing_error", pa.string()),  # a failure decided at listing time ("" = none)
]
LISTING_COLUMNS = tuple(name for name, _ in _LISTING_FIELDS)

WORK_SCHEMA = pa.schema(
    [
        ("row", pa.int64()),
        ("video_id", pa.string()),
        ("source", pa.string()),
        ("start", pa.float64()),  # clip bounds in seconds; NaN = none
        ("end", pa.float64()),
        *_LISTING_FIELDS,
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
# Decode facts the manifest keeps beside its core columns, as extra columns where they apply:
# the clip asked for, and what decoding found (coded size, rotation, salvage or resize note)
# and cost (median frames between keyframes, frames the decoder produced for the samples).
CLIP_COLUMNS = ("clip_start", "clip_end")
DECODE_FACT_COLUMNS = (
    "source_height",
    "source_width",
    "rotation",
    "decode_note",
    "keyframe_interval",
    "frames_decoded",
)

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


def _json(mapping: dict | None) -> str:
    return json.dumps(mapping, sort_keys=True, default=str) if mapping else "{}"


def _options_json(options: dict | None, memo: dict[int, str]) -> str:
    """The items of one listing share one options dict: serialise it once per chunk."""
    key = id(options)
    if key not in memo:
        memo[key] = _json(options)
    return memo[key]


def _chunk(rows: list[int], video_ids: Sequence[str], items: list[VideoItem], encoders: list[str]):
    """Work rows ``rows`` as one Arrow table: the listed items' typed fields, column by column."""
    nan, memo = float("nan"), {}
    members = [it.member for it in items]
    columns = {
        "row": rows,
        "video_id": [video_ids[r] for r in rows],
        "source": [it.source for it in items],
        "start": [nan if it.start is None else it.start for it in items],
        "end": [nan if it.end is None else it.end for it in items],
        "source_kind": [it.source_kind for it in items],
        "member_shard": [m.shard if m else "" for m in members],
        "member_offset": [m.offset if m else -1 for m in members],
        "member_size": [m.size if m else -1 for m in members],
        "storage_options": [_options_json(it.storage_options, memo) for it in items],
        "listing_error": [it.error or "" for it in items],
        "extra": [_json(it.extra) for it in items],
        "encoders": encoders,
    }
    return pa.table(columns, schema=WORK_SCHEMA)


def work_table(
    work: Iterable[Any],
    video_ids: Sequence[str],
    items: Sequence[VideoItem],
    chunk_rows: int = 65_536,
) -> pa.Table:
    """Work rows: one per video to decode, as Arrow columns built a chunk at a time, so a million
    videos cost tens of MB on the driver instead of a million Python dicts.

    ``work``: shards to run (``.rows`` and ``.encoders_by_row``, see ``jobs.planning``);
    ``video_ids``: the store's row -> id; ``items``: the listed inputs. A store row the input
    lacks gets an empty source: it is never decoded and fails with a reason.
    """
    from pipeline.sources.item import VideoItem  # deferred: pipeline.sources imports this module

    by_id = {it.video_id: it for it in items}
    no_source = VideoItem("", "")
    chunks: list[pa.Table] = []
    rows: list[int] = []
    listed: list[VideoItem] = []
    encoders: list[str] = []
    for w in work:
        for row in w.rows:
            rows.append(row)
            listed.append(by_id.get(video_ids[row], no_source))
            encoders.append(",".join(w.encoders_by_row[row]))
            if len(rows) >= chunk_rows:
                chunks.append(_chunk(rows, video_ids, listed, encoders))
                rows, listed, encoders = [], [], []
    if rows:
        chunks.append(_chunk(rows, video_ids, listed, encoders))
    return pa.concat_tables(chunks) if chunks else WORK_SCHEMA.empty_table()
