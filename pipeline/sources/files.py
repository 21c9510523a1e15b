"""Videos under a folder (recursive), matching a glob, or one file: local or any fsspec URL.

A local entry that is not a regular file (a FIFO, a device or a link to one, a folder named
``x.mp4``) is listed as an item failing ``not-a-file:``, never read. The job's own store and
any other merv store (a folder whose ``zarr.json`` has ``merv_store_version``) are never
listed: with ``--all-files`` and the store inside the input folder, the store would otherwise
become input and grow on every rerun.
"""

from __future__ import annotations

import glob
import json
import os
import posixpath
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from pipeline import failures
from pipeline.fetch import is_url, local_path, not_a_file
from pipeline.sources.checks import kind_of
from pipeline.sources.item import VIDEO_EXTENSIONS, VideoItem


def _has_video_ext(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS


def _ids(rel: dict[str, str], errors: dict[str, str] | None = None) -> list[VideoItem]:
    """The id is the relative path without its extension; where two files share a stem
    (``a.mp4`` and ``a.avi``) both keep their extension so ids stay unique."""
    err = errors or {}
    stems: dict[str, list[str]] = {}
    for source, r in rel.items():
        stems.setdefault(posixpath.splitext(r)[0], []).append(source)
    return [
        VideoItem(stem if len(group) == 1 else rel[s], s, source_kind=kind_of(s), error=err.get(s))
        for stem, group in stems.items()
        for s in group
    ]


def is_merv_store(folder: str, read=open) -> bool:
    """Whether ``folder`` holds a merv feature store (its ``zarr.json`` says so)."""
    try:
        with read(posixpath.join(folder, "zarr.json"), "rb") as f:
            attrs = json.loads(f.read(2**20)).get("attributes") or {}
        return "merv_store_version" in attrs
    except (OSError, ValueError, AttributeError):
        return False


def _walk(root: str, skip: set[str]) -> Iterator[str]:
    """Every entry under ``root`` (links not followed), pruning the folders in ``skip`` and
    merv stores."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = [
            d
            for d in dirs
            if os.path.realpath(os.path.join(folder, d)) not in skip
            and not is_merv_store(os.path.join(folder, d))
        ]
        yield from (os.path.join(folder, n) for n in (*dirs, *files))


def _in_store(path: str, skip: set[str], seen: dict[str, bool]) -> bool:
    """Whether a folder above ``path`` is in ``skip`` or is a merv store (memoised)."""
    folder = os.path.dirname(os.path.abspath(path))
    while True:
        if folder not in seen:
            seen[folder] = os.path.realpath(folder) in skip or is_merv_store(folder)
        if seen[folder] or os.path.dirname(folder) == folder:
            return seen[folder]
        folder = os.path.dirname(folder)


def _listed(path: str, all_files: bool) -> bool:
    """A folder only when named like a video (it fails ``not-a-file``); else by extension."""
    try:
        st = os.stat(path)
    except OSError:  # a dangling link: nothing to list
        return False
    if stat.S_ISDIR(st.st_mode):
        return _has_video_ext(path)
    return all_files or _has_video_ext(path)


def _list_local(input_path: str, all_files: bool, skip: set[str]) -> tuple[list[str], str]:
    if os.path.isdir(input_path):
        if os.path.realpath(input_path) in skip or is_merv_store(input_path):
            return [], input_path
        return [p for p in _walk(input_path, skip) if _listed(p, all_files)], input_path
    seen: dict[str, bool] = {}
    named = not glob.has_magic(input_path) and os.path.lexists(input_path)
    paths = [
        p
        for p in glob.glob(input_path, recursive=True)
        if (named or _listed(p, all_files)) and not _in_store(p, skip, seen)
    ]
    if not paths and not glob.has_magic(input_path):
        raise FileNotFoundError(f"input {input_path!r} is neither a folder nor a matching glob")
    root = os.path.commonpath([os.path.dirname(p) for p in paths]) if paths else "."
    return paths, root


def _not_files(paths: Iterable[str]) -> dict[str, str]:
    reasons = {p: not_a_file(p) for p in paths}
    return {p: f"{failures.NOT_A_FILE}: {r}" for p, r in reasons.items() if r}


def _remote_skip(fs, input_path: str, found: list[str], exclude: list[str]) -> list[str]:
    """Folders of ``found`` never listed: the excluded stores and every merv store."""
    proto = input_path.split("://", 1)[0]
    stores = [fs._strip_protocol(e).rstrip("/") for e in exclude if e.startswith(proto + "://")]
    for meta in sorted((p for p in found if p.endswith("/zarr.json")), key=len):
        folder = posixpath.dirname(meta)
        if not _under(folder, stores) and is_merv_store(folder, read=fs.open):
            stores.append(folder)
    return stores


def _under(path: str, folders: list[str]) -> bool:
    return any(path == f or path.startswith(f + "/") for f in folders)


def list_files(
    input_path: str,
    all_files: bool = False,
    storage_options: dict | None = None,
    exclude: Iterable[str] = (),
) -> list[VideoItem]:
    """Videos of a folder / glob / file, ids relative to the folder (or the glob's common dir);
    nothing inside the folders of ``exclude`` (the job's store) or inside any merv store."""
    exclude = [str(e) for e in exclude if e]
    if not is_url(input_path):
        skip = {os.path.realpath(local_path(e)) for e in exclude if not is_url(e)}
        paths, root = _list_local(local_path(input_path), all_files, skip)
        rel = {os.path.abspath(p): Path(os.path.relpath(p, root)).as_posix() for p in paths}
        return _ids(rel, _not_files(rel))
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
    stores = _remote_skip(fs, input_path, found, exclude)
    keep = [p for p in found if (all_files or _has_video_ext(p)) and not _under(p, stores)]
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
