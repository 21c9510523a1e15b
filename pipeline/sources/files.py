"""Videos under a folder (recursive), matching a glob, or one file: local or any fsspec URL."""

from __future__ import annotations

import glob
import os
import posixpath
from pathlib import Path

from pipeline.fetch import is_url, local_path
from pipeline.sources.checks import kind_of
from pipeline.sources.item import VIDEO_EXTENSIONS, VideoItem


def _has_video_ext(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _ids(rel: dict[str, str]) -> list[VideoItem]:
    """The id is the relative path without its extension; where two files share a stem
    (``a.mp4`` and ``a.avi``) both keep their extension so ids stay unique."""
    stems: dict[str, list[str]] = {}
    for source, r in rel.items():
        stems.setdefault(posixpath.splitext(r)[0], []).append(source)
    return [
        VideoItem(stem if len(group) == 1 else rel[s], s, source_kind=kind_of(s))
        for stem, group in stems.items()
        for s in group
    ]


def _list_local(input_path: str, all_files: bool) -> tuple[list[str], str]:
    def keep(p: str) -> bool:
        return os.path.isfile(p) and (all_files or _has_video_ext(p))

    if os.path.isdir(input_path):
        return [str(p) for p in Path(input_path).rglob("*") if keep(str(p))], input_path
    paths = [p for p in glob.glob(input_path, recursive=True) if keep(p)]
    if not paths and not glob.has_magic(input_path):
        raise FileNotFoundError(f"input {input_path!r} is neither a folder nor a matching glob")
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else "."
    return paths, root


def list_files(
    input_path: str, all_files: bool = False, storage_options: dict | None = None
) -> list[VideoItem]:
    """Videos of a folder / glob / file, ids relative to the folder (or the glob's common dir)."""
    if not is_url(input_path):
        path = local_path(input_path)
        paths, root = _list_local(path, all_files)
        return _ids({os.path.abspath(p): Path(os.path.relpath(p, root)).as_posix() for p in paths})
    import fsspec

    fs, root = fsspec.core.url_to_fs(input_path, **(storage_options or {}))
    root = root.rstrip("/")
    if fs.isdir(root):
        found, base = fs.find(root), root
    elif glob.has_magic(root):
        found = [p for p, info in fs.glob(root, detail=True).items() if info["type"] == "file"]
        base = posixpath.commonpath([posixpath.dirname(p) for p in found]) if found else root
    elif fs.isfile(root):
        found, base = [root], posixpath.dirname(root)
    else:
        raise FileNotFoundError(f"input {input_path!r} is neither a folder, a file nor a glob")
    keep = [p for p in found if all_files or _has_video_ext(p)]
    return _ids({fs.unstrip_protocol(p): posixpath.relpath(p, base) for p in keep})


def find_tars(input_path: str, storage_options: dict | None = None) -> list[str]:
    """``.tar`` shards in a folder that holds no videos: read as a WebDataset."""
    if not is_url(input_path):
        path = local_path(input_path)
        if not os.path.isdir(path):
            return []
        return sorted(os.path.abspath(str(p)) for p in Path(path).rglob("*.tar") if p.is_file())
    import fsspec

    fs, root = fsspec.core.url_to_fs(input_path, **(storage_options or {}))
    if not fs.isdir(root):
        return []
    return sorted(fs.unstrip_protocol(p) for p in fs.find(root) if p.endswith(".tar"))
