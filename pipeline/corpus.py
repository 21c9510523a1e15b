"""List a corpus of videos and plan its shards.

Rows are assigned from the sorted video ids, so the same corpus always gives the same rows and
the same shards, whichever machine plans it. A shard is the unit of work and of writing.
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass, field
from pathlib import Path

VIDEO_EXTENSIONS = frozenset(
    {".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".ts",
     ".3gp", ".ogv", ".gif"}
)


@dataclass(frozen=True)
class VideoItem:
    video_id: str
    source: str  # local path or fsspec URL
    start: float | None = None  # clip boundaries in seconds (None = whole video)
    end: float | None = None
    extra: dict = field(default_factory=dict)  # manifest columns carried into the store (label, ...)


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


def _is_video(path: str, include_all: bool) -> bool:
    return os.path.isfile(path) and (include_all or Path(path).suffix.lower() in VIDEO_EXTENSIONS)


def list_videos(input_path: str, all_files: bool = False) -> list[VideoItem]:
    """Videos under a folder (recursive) or matching a glob, sorted by video id.

    The id is the path relative to the folder without its extension; where two files share a
    stem (``a.mp4`` and ``a.avi``) both keep their extension so ids stay unique. ``all_files``
    also lists files without a video extension (so that a stray file is reported, not skipped).
    """
    if os.path.isdir(input_path):
        root = input_path
        paths = [str(p) for p in Path(root).rglob("*") if _is_video(str(p), all_files)]
    else:
        paths = [p for p in glob.glob(input_path, recursive=True) if _is_video(p, all_files)]
        if not paths and not glob.has_magic(input_path):
            raise FileNotFoundError(f"input {input_path!r} is neither a folder nor a matching glob")
        root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else "."
    rel = {p: Path(os.path.relpath(p, root)).as_posix() for p in paths}
    stems: dict[str, list[str]] = {}
    for p, r in rel.items():
        stems.setdefault(os.path.splitext(r)[0], []).append(p)
    items = []
    for stem, group in stems.items():
        for p in group:
            items.append(VideoItem(stem if len(group) == 1 else rel[p], os.path.abspath(p)))
    return sorted(items, key=lambda it: it.video_id)


def plan_shards(items: list[VideoItem], shard_size: int) -> ShardPlan:
    if shard_size < 1:
        raise ValueError(f"shard_size must be >= 1, got {shard_size}")
    ids = tuple(it.video_id for it in items)
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate video ids in the corpus")
    return ShardPlan(tuple(sorted(ids)), shard_size)
