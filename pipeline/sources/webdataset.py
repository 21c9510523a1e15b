"""WebDataset tar shards: one sample per key, its video member read by byte range.

A shard is a plain tar whose members ``<key>.<ext>`` group into samples by key (the path up to
the first dot of the file name, as WebDataset does). A sample's video member (``mp4``, ``avi``,
...) is the video; ``json`` members add their fields to the manifest (``start`` / ``end`` make
it a clip), ``txt`` / ``cls`` and similar small members add one column each. The key is the
video id (validated later like any id; it never becomes a path).

Listing reads only tar headers (plus small metadata members) and records each video member's
offset and size, so decoding one video is one ranged read of its shard, local or remote, instead
of a scan of the tar per video. Shards are given as a ``.tar`` path or URL, a glob, brace
ranges (``shard-{000..009}.tar``) or a folder holding only tars.
"""

from __future__ import annotations

import glob
import json
import posixpath
import re
import tarfile

from braceexpand import braceexpand

from pipeline import failures
from pipeline.failures import DecodeError, one_line
from pipeline.fetch import classify_read_error, is_url, local_path, with_retry
from pipeline.sources.checks import clip_bounds, failed_item
from pipeline.sources.item import TAR_MEMBER, VIDEO_EXTENSIONS, TarMember, VideoItem

TAR_SUFFIXES = (".tar",)
_KEY = re.compile(r"^((?:.*/|)[^./]+)\.([^/]*)$")  # WebDataset's key / extension split
_TEXT_EXTS = {"txt", "cls", "cls2", "caption", "label", "id", "text"}
_META_LIMIT = 1 << 20  # metadata members larger than this are not read into the manifest


def expand_shards(spec: str, storage_options: dict | None = None) -> list[str]:
    """Brace ranges first, then globs; order as written (braces) or sorted (globs)."""
    urls: list[str] = []
    for pattern in braceexpand(spec):
        if not glob.has_magic(pattern):
            urls.append(pattern)
        elif is_url(pattern):
            import fsspec

            fs, path = fsspec.core.url_to_fs(pattern, **(storage_options or {}))
            urls += sorted(fs.unstrip_protocol(p) for p in fs.glob(path))
        else:
            urls += sorted(glob.glob(local_path(pattern)))
    return urls


def _members(url: str, storage_options: dict, out: list) -> None:
    """Append ``(member, bytes of a small metadata member or None)`` for each regular member;
    what was read before a failure stays in ``out``."""
    import fsspec

    out.clear()  # a retry starts the shard over
    # Small blocks: listing reads headers, not the videos between them.
    with fsspec.open(url, "rb", block_size=1 << 16, **storage_options) as f:
        with tarfile.open(fileobj=f, mode="r:") as tar:
            for info in tar:
                if not info.isfile():
                    continue
                match = _KEY.match(info.name)
                ext = match.group(2).lower() if match else ""
                data = None
                if (ext == "json" or ext in _TEXT_EXTS) and info.size <= _META_LIMIT:
                    handle = tar.extractfile(info)
                    data = handle.read() if handle else None
                out.append((info, data))


def _sample_extra(meta: list[tuple[str, bytes]]) -> tuple[dict, float | None, float | None]:
    extra: dict = {}
    start = end = None
    for ext, data in meta:
        text = data.decode("utf-8", "replace")
        if ext == "json":
            try:
                fields = json.loads(text)
            except json.JSONDecodeError:
                extra["json"] = text
                continue
            if isinstance(fields, dict):
                start, end = fields.pop("start", None), fields.pop("end", None)
                extra.update(fields)
            else:
                extra["json"] = text
        else:
            value: object = text.strip()
            if ext.startswith("cls") and str(value).lstrip("-").isdigit():
                value = int(str(value))
            extra[ext] = value
    return extra, start, end


def _samples(url: str, members, all_files: bool) -> list[VideoItem]:
    groups: dict[str, list[tuple[str, tarfile.TarInfo, bytes | None]]] = {}
    for info, data in members:
        match = _KEY.match(info.name)
        if match:
            groups.setdefault(match.group(1), []).append((match.group(2).lower(), info, data))
    items = []
    for key, group in groups.items():
        videos = [(e, i) for e, i, _ in group if "." + e.rsplit(".", 1)[-1] in VIDEO_EXTENSIONS]
        other = [(e, i) for e, i, d in group if d is None and (e, i) not in videos]
        chosen = videos[0] if videos else (other[0] if all_files and other else None)
        if chosen is None:
            continue
        extra, start, end = _sample_extra([(e, d) for e, _, d in group if d is not None])
        info, error = chosen[1], None
        try:
            start, end = clip_bounds(start, end)
        except (TypeError, ValueError) as err:
            error, start, end = f"{failures.INVALID_CLIP}: {err}", None, None
        items.append(
            VideoItem(
                key,
                f"tar://{info.name}::{url}",
                start,
                end,
                extra,
                source_kind=TAR_MEMBER,
                member=TarMember(url, info.offset_data, info.size),
                error=error,
            )
        )
    return items


def list_shards(
    shards: list[str], all_files: bool = False, storage_options: dict | None = None
) -> list[VideoItem]:
    """Every sample with a video member in ``shards``, in shard then member order."""
    opts = storage_options or {}
    items: list[VideoItem] = []
    for url in shards:
        members: list = []
        try:
            with_retry(lambda u=url, m=members: _members(u, opts, m))
        except Exception as err:  # noqa: BLE001 - a bad shard fails as a row, the rest runs
            reason = classify_read_error(err, url)
            if isinstance(err, tarfile.TarError):
                reason = DecodeError(
                    failures.CORRUPT,
                    f"{url}: not a readable tar after {len(members)} members: {one_line(err, 120)}",
                )
            name = posixpath.basename(url.split("?")[0])
            items.append(failed_item(f"#shard-{name}", url, str(reason)))
        items += _samples(url, members, all_files)
    return items
