"""Manifests: CSV / TSV / Parquet / JSONL tables, and LLaVA-style JSON training files.

A table row names a video by ``video_id`` (or ``id``) and ``path`` (or ``url``, ``video``,
``source``, ``video_path``, ``filename``); optional ``start`` / ``end`` seconds make it a clip.
Every other column is carried into the store's manifest. Relative paths are resolved against
``video_root`` when given, else the manifest's own folder (local or URL). Without an id column
the id is the path without its extension, relative to that folder.

LLaVA JSON (``[{"id", "video", "conversations": [...]}, ...]``, as Video-LLaVA and MERV train
on) is read as a manifest: ``id`` -> video_id, ``video`` -> path. Entries that repeat the same
id *and* video (several question sets on one clip) are one video: their conversations are kept
together as a JSON list in the ``conversations`` column. Entries without a video (image or text
samples) are not videos and are skipped.

An entry that names no usable path or carries bad clip bounds becomes a failed item with a
reason, not an exception: the manifest's other videos still run.
"""

from __future__ import annotations

import io
import json
import logging
import os
import posixpath
from typing import Any

from pipeline import failures
from pipeline.fetch import is_url, local_path
from pipeline.sources.checks import clip_bounds, failed_item, kind_of
from pipeline.sources.item import VideoItem

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson", ".json")
ID_COLUMNS = ("video_id", "id")
PATH_COLUMNS = ("path", "url", "video", "source", "video_path", "filename")


def _read_bytes(url: str, storage_options: dict) -> bytes:
    import fsspec

    with fsspec.open(url, "rb", **storage_options) as f:
        return f.read()


def _records(url: str, storage_options: dict) -> list[dict[str, Any]]:
    name = url.split("?")[0].lower()
    data = _read_bytes(url, storage_options)
    if name.endswith((".csv", ".tsv")):
        import pyarrow as pa
        from pyarrow import csv

        header = data.split(b"\n", 1)[0].decode("utf-8-sig", "replace")
        delimiter = "\t" if name.endswith(".tsv") else ","
        names = [c.strip().strip('"') for c in header.split(delimiter)]
        as_text = {c: pa.string() for c in names if c in ID_COLUMNS + PATH_COLUMNS}
        table = csv.read_csv(
            io.BytesIO(data),
            parse_options=csv.ParseOptions(delimiter=delimiter),
            convert_options=csv.ConvertOptions(column_types=as_text),
        )
        return table.to_pylist()
    if name.endswith((".parquet", ".pq")):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(data)).to_pylist()
    text = data.decode("utf-8-sig")
    if name.endswith((".jsonl", ".ndjson")):
        out = []
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise ValueError(f"{url}: line {n} is not JSON: {err}") from err
        return out
    records = json.loads(text)
    if not isinstance(records, list):
        raise ValueError(f"{url}: expected a JSON list of entries, got {type(records).__name__}")
    return _from_llava(records) if _is_llava(records) else records


def _is_llava(records: list) -> bool:
    return any(isinstance(r, dict) and "conversations" in r for r in records[:100])


def _from_llava(records: list) -> list[dict[str, Any]]:
    grouped: dict[tuple[str, str], dict[str, Any]] = {}
    skipped = 0
    for r in records:
        if not isinstance(r, dict) or not r.get("video"):
            skipped += 1
            continue
        video = r["video"]
        key = (json.dumps(r.get("id"), default=str), json.dumps(video, default=str))
        if key not in grouped:
            row = {k: v for k, v in r.items() if k not in ("id", "video", "conversations")}
            grouped[key] = {"video_id": r.get("id"), "path": video, **row, "conversations": []}
        grouped[key]["conversations"].append(r.get("conversations"))
    if skipped:
        log.info("LLaVA file: %d entries without a video skipped", skipped)
    for row in grouped.values():
        row["llava_entries"] = len(row["conversations"])
        row["conversations"] = json.dumps(row["conversations"], ensure_ascii=False)
    return list(grouped.values())


def _pick(record: dict, names: tuple[str, ...]) -> tuple[str | None, Any]:
    for name in names:
        if name in record:
            return name, record[name]
    return None, None


def _resolve(path: str, base: str) -> str:
    if is_url(path):
        return path
    path = local_path(path)
    if os.path.isabs(path):
        return path
    if is_url(base):
        return base.rstrip("/") + "/" + path
    return os.path.normpath(os.path.join(base, path))


def _derived_id(path: str, base: str) -> str:
    rel = posixpath.relpath(path, base) if not is_url(path) and not is_url(base) else path
    if rel.startswith("..") or is_url(rel):
        rel = posixpath.basename(path.split("::")[0].split("?")[0])
    return posixpath.splitext(rel.replace(os.sep, "/"))[0]


def read_manifest(
    url: str, video_root: str = "", storage_options: dict | None = None
) -> list[VideoItem]:
    opts = storage_options or {}
    base = video_root or (
        posixpath.dirname(url) if is_url(url) else os.path.dirname(os.path.abspath(local_path(url)))
    )
    records = _records(url, opts)
    items = []
    for n, record in enumerate(records, 1):
        if not isinstance(record, dict):
            items.append(
                failed_item(
                    f"#entry-{n}", url, f"{failures.INVALID_ENTRY}: entry {n} is not an object"
                )
            )
            continue
        id_col, raw_id = _pick(record, ID_COLUMNS)
        path_col, raw_path = _pick(record, PATH_COLUMNS)
        extra = {k: v for k, v in record.items() if k not in (id_col, path_col, "start", "end")}
        if not isinstance(raw_path, str) or not raw_path.strip():
            vid = str(raw_id) if raw_id not in (None, "") else f"#entry-{n}"
            items.append(
                failed_item(
                    vid,
                    url,
                    f"{failures.INVALID_ENTRY}: entry {n} has no video path "
                    f"(columns {sorted(record)[:8]})",
                    extra,
                )
            )
            continue
        source = _resolve(raw_path.strip(), base)
        vid = raw_id if raw_id is not None else _derived_id(source, base)
        vid = vid if isinstance(vid, str) else str(vid)
        try:
            start, end = clip_bounds(record.get("start"), record.get("end"))
        except (TypeError, ValueError) as err:
            items.append(failed_item(vid, source, f"{failures.INVALID_CLIP}: {err}", extra))
            continue
        items.append(VideoItem(vid, source, start, end, extra, source_kind=kind_of(source)))
    return items
