"""What listing an input gives: one ``VideoItem`` per video, and how its bytes are reached.

This module imports nothing of the project: every source reader, the shard plan, the row schema
and the decode worker share it. Like lhotse's ``AudioSource``, an item says in typed fields what
the pipeline knows beyond the user's own columns: how the decode worker reaches the bytes
(``source_kind``, a tar member's byte range, fsspec options) and a failure decided at listing
time. ``extra`` holds only the input's own columns, carried into the store's manifest.
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

# How the decode worker reaches a video's bytes (``VideoItem.source_kind``).
FILE = "file"  # a local path (``file://`` too): decoded in place
URL = "url"  # an fsspec URL: copied to a local temporary file first
TAR_MEMBER = "tar-member"  # a WebDataset member: one ranged read of its shard (``member``)
SOURCE_KINDS = (FILE, URL, TAR_MEMBER)


@dataclass(frozen=True, slots=True)
class TarMember:
    """Where a WebDataset member's bytes lie in its shard, read from the tar headers."""

    shard: str  # path or fsspec URL of the ``.tar``
    offset: int  # first byte of the member's data
    size: int  # the member's length in bytes


@dataclass(frozen=True, slots=True)
class VideoItem:
    video_id: str
    source: str  # what the manifest records: a path, an fsspec URL or ``tar://member::shard``
    start: float | None = None  # clip boundaries in seconds (None = whole video)
    end: float | None = None
    extra: dict = field(default_factory=dict)  # the input's own columns (label, ...)
    source_kind: str = FILE  # FILE, URL or TAR_MEMBER
    member: TarMember | None = None  # TAR_MEMBER only: the member's byte range
    storage_options: dict | None = None  # fsspec options, for URL and TAR_MEMBER items
    error: str | None = None  # a failure decided at listing time: the item is never read

    def __post_init__(self) -> None:
        if self.source_kind not in SOURCE_KINDS:
            raise ValueError(f"source_kind {self.source_kind!r} not in {SOURCE_KINDS}")
        if (self.member is not None) != (self.source_kind == TAR_MEMBER):
            raise ValueError(f"a {self.source_kind} item with member={self.member!r}")
