"""Corpus inputs: every format users keep videos in, listed as ``VideoItem``s.

==========================================  ============================================
input                                       read as
==========================================  ============================================
``*.csv *.tsv *.parquet *.jsonl *.json``    a manifest (``json`` may be LLaVA training data)
``*.tar`` (glob, ``{000..009}`` braces)     WebDataset shards
a folder holding only ``.tar`` files        WebDataset shards
anything else                               a folder (recursive), a glob or one file
==========================================  ============================================

Each may be a local path or any fsspec URL (``s3://``, ``gs://``, ``http(s)://``,
``memory://`` in-process only); ``storage_options`` are the fsspec options for those URLs and
travel with each item to the decode workers. After listing, ``checks.finalize`` validates ids,
turns duplicates and refused entries into failing items and sorts by id. An item
(``pipeline.sources.item``) says in typed fields how its bytes are reached and whether it
already failed; its ``extra`` holds only the input's own columns.
"""

from __future__ import annotations

from collections.abc import Iterable

from pipeline.sources.checks import finalize
from pipeline.sources.files import find_tars, list_files
from pipeline.sources.item import VideoItem
from pipeline.sources.manifest import MANIFEST_SUFFIXES, read_manifest
from pipeline.sources.webdataset import TAR_SUFFIXES, expand_shards, list_shards

__all__ = ["VideoItem", "input_kind", "list_videos"]


def input_kind(spec: str) -> str:
    """``manifest``, ``webdataset`` or ``files``, from the input's suffix."""
    path = spec.split("?")[0].rstrip("/").lower()
    if path.endswith(MANIFEST_SUFFIXES):
        return "manifest"
    if path.endswith(TAR_SUFFIXES):
        return "webdataset"
    return "files"


def _typed(value: object) -> object:
    """Options from flags and YAML string maps arrive as text: "true" -> True, "3" -> 3."""
    if not isinstance(value, str):
        return value
    import yaml

    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return value
    return parsed if isinstance(parsed, (bool, int, float)) else value


def list_videos(
    spec: str,
    all_files: bool = False,
    video_root: str = "",
    storage_options: dict | None = None,
    exclude: Iterable[str] = (),
) -> list[VideoItem]:
    """Every video of the input ``spec``, sorted by video id, ids unique.

    Args:
        spec: any input of the table above (its kind is read from the suffix, see
            ``input_kind``), local or at an fsspec URL.
        all_files: list every file of a folder, glob or tar shard, not only those with a video
            extension.
        video_root: the folder (or URL) that relative manifest paths are resolved against;
            default: the manifest's own folder.
        storage_options: fsspec options for URLs; text values ("true", "3") are read as YAML
            scalars. They are set on every item read through fsspec, for the decode workers.
        exclude: folders never listed (the job's own store); merv stores are never listed.

    Returns:
        ``VideoItem``s (none when a glob matches nothing). Entries that cannot be used
        (duplicate or invalid id, no path, bad clip bounds, an unreadable shard) come back as
        items whose ``error`` says why, never as an exception.

    Raises:
        FileNotFoundError: a folder or glob that does not exist, no tar shard matching
            ``spec``, or a manifest that does not exist.
        ValueError: a manifest that cannot be parsed (CSV, Parquet, JSON, JSONL).
        OSError: a manifest or listing that cannot be read (permissions, network).
    """
    opts = {k: _typed(v) for k, v in (storage_options or {}).items()}
    kind = input_kind(spec)
    if kind == "manifest":
        items = read_manifest(spec, video_root, opts)
    elif kind == "webdataset":
        shards = expand_shards(spec, opts)
        if not shards:
            raise FileNotFoundError(f"no tar shards match {spec!r}")
        items = list_shards(shards, all_files, opts)
    else:
        items = list_files(spec, all_files, opts, exclude)
        if not items and (shards := find_tars(spec, opts)):
            items = list_shards(shards, all_files, opts)
    return finalize(items, opts)
