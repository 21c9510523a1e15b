"""Make a listing safe to plan: valid unique ids, storable extra columns, fsspec options set.

Ids from manifests and tar keys are user data. They are only ever stored as strings (the store
never builds a path from one), but an id that *looks* like a path escape (``../x``, ``/etc``,
``a//b``), is empty, or holds control characters is refused anyway, so no later tool that does
join ids into paths can be walked out of its folder.

Refused and duplicate entries do not vanish and do not stop the job: each becomes an item that
fails with a reason, under a derived id that cannot collide, so the shard plan stays a sorted
list of unique ids and is the same on every run:

- the first entry with an id keeps it (input order: manifest rows, shard then member order);
  each later one becomes ``<id>#dup1``, ``<id>#dup2``, ... failing ``duplicate-id:``;
- an invalid id becomes ``#invalid-<hash of the id>`` failing ``invalid-id:``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections import Counter
from dataclasses import replace
from typing import Any

from pipeline import failures
from pipeline.fetch import is_url
from pipeline.rows import CLIP_COLUMNS, DECODE_FACT_COLUMNS, MANIFEST_COLUMNS
from pipeline.sources.item import FILE, URL, VideoItem

MAX_ID_LENGTH = 512
# Manifest columns the pipeline writes itself: an input column of the same name is kept as
# ``input_<name>`` instead of overwriting (or being overwritten by) the pipeline's value.
PIPELINE_COLUMNS = frozenset((*MANIFEST_COLUMNS, *CLIP_COLUMNS, *DECODE_FACT_COLUMNS))
_DRIVE = re.compile(r"^[A-Za-z]:[\\/]")


def kind_of(source: str) -> str:
    """``URL`` for an fsspec URL, else ``FILE`` (a local path, ``file://`` included)."""
    return URL if is_url(source) else FILE


def failed_item(video_id: Any, source: str, reason: str, extra: dict | None = None) -> VideoItem:
    """An item that fails with ``reason`` without being read."""
    return VideoItem(
        video_id, source, extra=dict(extra or {}), source_kind=kind_of(source), error=reason
    )


def _seconds(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    number = float(value)
    if math.isnan(number):
        return None
    if not math.isfinite(number) or number < 0:
        raise ValueError(f"{value!r} is not a time in seconds")
    return number


def clip_bounds(start: Any, end: Any) -> tuple[float | None, float | None]:
    """Clip bounds in seconds (None = open); ValueError for text, negatives or end <= start."""
    lo, hi = _seconds(start), _seconds(end)
    if lo is not None and hi is not None and hi <= lo:
        raise ValueError(f"end {hi} <= start {lo}")
    return lo, hi


def check_id(video_id: Any) -> str | None:
    """Why ``video_id`` is refused, or None when it is fine."""
    if not isinstance(video_id, str):
        return f"not a string ({type(video_id).__name__})"
    if not video_id:
        return "empty"
    if len(video_id) > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in video_id):
        return "control characters"
    if video_id != video_id.strip():
        return "leading or trailing whitespace"
    if "\\" in video_id:
        return "backslash"
    if video_id.startswith("/") or _DRIVE.match(video_id):
        return "absolute path"
    if any(part in ("", ".", "..") for part in video_id.split("/")):
        return "empty, '.' or '..' path segment"
    return None


def _fresh(base: str, taken: set[str]) -> str:
    candidate, n = base, 1
    while candidate in taken:
        n += 1
        candidate = f"{base}.{n}"
    taken.add(candidate)
    return candidate


def _scalar(value: Any) -> Any:
    if hasattr(value, "item") and not isinstance(value, (list, dict, str, bytes)):
        value = value.item()  # numpy / pyarrow scalars
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)
    return str(value)


def _normalise_extras(items: list[VideoItem]) -> list[dict[str, Any]]:
    """One Arrow-friendly type per column: int+float -> float, any other mix -> strings."""
    rows = [{k: _scalar(v) for k, v in it.extra.items()} for it in items]
    columns = {k for r in rows for k in r}
    for col in columns:
        types = {type(r[col]) for r in rows if r.get(col) is not None}
        if types <= {int, float} and float in types:
            cast = float
        elif len(types) > 1:
            cast = str
        else:
            continue
        for r in rows:
            if r.get(col) is not None:
                r[col] = cast(r[col])
    renamed = []
    for r in rows:
        renamed.append(
            {
                (f"input_{k}" if k in PIPELINE_COLUMNS else k): v
                for k, v in r.items()
                if v is not None
            }
        )
    return renamed


def finalize(items: list[VideoItem], storage_options: dict | None = None) -> list[VideoItem]:
    """Valid unique ids (refused and duplicate entries become failing items), storable extra
    columns, ``storage_options`` on every item read through fsspec; sorted by video id."""
    taken = {it.video_id for it in items if isinstance(it.video_id, str)}
    first: dict[str, str] = {}
    dups: Counter[str] = Counter()
    shared_options = dict(storage_options) if storage_options else None  # one copy for all
    out = []
    for item, extra in zip(items, _normalise_extras(items), strict=True):
        vid, error = item.video_id, item.error
        problem = check_id(vid)
        if problem:
            digest = hashlib.sha1(repr(vid).encode()).hexdigest()[:10]
            vid = _fresh(f"#invalid-{digest}", taken)
            error = f"{failures.INVALID_ID}: {problem}: {repr(item.video_id)[:80]}"
        elif vid in first:
            dups[vid] += 1
            vid = _fresh(f"{vid}#dup{dups[vid]}", taken)
            error = (
                f"{failures.DUPLICATE_ID}: {item.video_id!r} is already the id of "
                f"{first[item.video_id]}"
            )
        else:
            first[vid] = item.source
        options = shared_options if item.source_kind != FILE else None
        out.append(replace(item, video_id=vid, extra=extra, storage_options=options, error=error))
    return sorted(out, key=lambda it: it.video_id)
