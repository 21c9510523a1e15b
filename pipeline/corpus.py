"""List a corpus of videos and plan its shards.

Rows are assigned from the sorted video ids, so the same corpus always gives the same rows and
the same shards, whichever machine plans it. A shard is the unit of work and of writing.
Listing itself (folders, globs, manifests, LLaVA JSON, WebDataset tars, any fsspec URL) lives
in ``pipeline.sources``; ``list_videos`` is its entry point.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VIDEO_EXTENSIONS = frozenset(
    {
        ".mp4",
        ".avi",
        ".mkv",
        ".webm",
        ".mov",
        ".m4v",
        ".mpg",
        ".mpeg",
        ".flv",
        ".wmv",
        ".ts",
        ".3gp",
        ".ogv",
        ".gif",
    }
)

# ``extra[HINTS_KEY]`` carries pipeline-internal facts from the listing to the decode worker
# (a failure decided at listing time, fsspec options, a tar member's byte range). Work rows only
# carry ``extra`` as JSON, so the hints ride there; the decode worker pops them, and they are
# never written to the store's manifest.
HINTS_KEY = "_merv"


@dataclass(frozen=True, slots=True)
class VideoItem:
    video_id: str
    source: str  # local path or fsspec URL (``tar://member::shard`` for WebDataset members)
    start: float | None = None  # clip boundaries in seconds (None = whole video)
    end: float | None = None
    extra: dict = field(
        default_factory=dict
    )  # manifest columns carried into the store (label, ...)

    @property
    def hints(self) -> dict[str, Any]:
        return dict(self.extra.get(HINTS_KEY) or {})

    @property
    def error(self) -> str | None:
        """A failure decided at listing time (duplicate or invalid id, bad clip bounds)."""
        return self.hints.get("error")


def split_hints(extra: dict | str | None) -> tuple[dict, dict]:
    """``(user columns, pipeline hints)`` from an item's ``extra`` (a dict or its JSON)."""
    data = json.loads(extra) if isinstance(extra, str) else dict(extra or {})
    hints = data.pop(HINTS_KEY, None) or {}
    return data, dict(hints)


@dataclass(frozen=True)
class ShardPlan:
    video_ids: tuple[str, ...]
    shard_size: int

    @property
    def num_rows(self) -> int:
        return len(self.video_ids)

    @property
    def num_shards(self) -> int:
        return -(-self.num_rows // self.shard_size)

    def shard_rows(self, shard: int) -> range:
        start = shard * self.shard_size
        return range(start, min(start + self.shard_size, self.num_rows))

    def shard_of(self, row: int) -> int:
        return row // self.shard_size


def list_videos(
    input_path: str,
    all_files: bool = False,
    video_root: str = "",
    storage_options: dict | None = None,
) -> list[VideoItem]:
    """Every video of ``input_path``, sorted by video id, ids unique (see ``pipeline.sources``).

    ``input_path`` is a folder (recursive) or glob of videos, a CSV / TSV / Parquet / JSONL
    manifest, a LLaVA-style JSON training file, or WebDataset ``.tar`` shards (glob or
    ``{000..009}`` braces), local or at any fsspec URL. Duplicate and invalid ids come back as
    items that fail with a reason, never as an exception.
    """
    from pipeline.sources import list_inputs

    return list_inputs(
        input_path, all_files=all_files, video_root=video_root, storage_options=storage_options
    )


def plan_shards(items: list[VideoItem], shard_size: int) -> ShardPlan:
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ids = tuple(it.video_id for it in items)
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate video ids in the corpus")
    return ShardPlan(tuple(sorted(ids)), shard_size)
