"""Which of the selected rows train and which validate.

Two ways, chosen by the run's config:

- a seeded stratified fraction (``val_fraction``): the default, for stores without a split;
- a named split: every video's ``train`` / ``val`` / ``test`` from a column of the store's
  manifest (``split_column``, where extraction carried it from the input list) or from a file of
  ``video_id,<column>`` rows (``split_file``, CSV / Parquet / JSONL, local or any fsspec URL).
  ``test`` rows are held out of training and validation both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# accepted spellings -> the part they name (benchmarks spell validation several ways)
PART_NAMES = {
    "train": "train",
    "training": "train",
    "val": "val",
    "valid": "val",
    "validation": "val",
    "dev": "val",
    "test": "test",
}
DEFAULT_COLUMN = "split"


@dataclass
class NamedSplit:
    """Per selected row: its part, read from ``source``."""

    parts: np.ndarray  # "train" / "val" / "test" per row
    source: str

    def counts(self) -> dict[str, int]:
        return {p: int((self.parts == p).sum()) for p in ("train", "val", "test")}


def split_indices(
    targets: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic stratified split: about val_fraction of every class goes to validation."""
    targets = np.asarray(targets)
    if val_fraction <= 0:
        return np.arange(targets.size), np.arange(0)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for c in np.unique(targets):
        idx = rng.permutation(np.nonzero(targets == c)[0])
        # Keep at least one training example per class; round the rest to val_fraction.
        n_val = min(int(round(val_fraction * idx.size)), idx.size - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def read_named_split(
    st, vids: Sequence[str], split_file: str | None, split_column: str | None, store_name: str
) -> NamedSplit | None:
    """The part of each of ``vids`` (None: the run uses ``val_fraction``).

    Raises ValueError naming the fix for a missing column, a video without a part, or a value
    that names no part.
    """
    if split_file is None and split_column is None:
        return None
    column = split_column or DEFAULT_COLUMN
    if split_file is not None:
        from .dataset import read_table  # lazy: pyarrow readers

        table = read_table(split_file, ("video_id", column), "split file")
        source = f"split file {split_file} (column {column!r})"
    else:
        table = st.manifest()
        source = f"the manifest of store {store_name} (column {column!r})"
        if column not in table.column_names:
            raise ValueError(
                f"{source} does not exist (columns: {table.column_names}): pass --split-file "
                f"with video_id,{column} rows, or carry a {column} column into the manifest"
            )
    by_video = _parts_by_video(table, column, source)
    missing = [v for v in vids if v not in by_video]
    if missing:
        shown = ", ".join(repr(v) for v in missing[:5]) + (" ..." if len(missing) > 5 else "")
        raise ValueError(
            f"{len(missing)} of {len(vids)} ok video(s) have no split in {source}: {shown}; "
            "give each a train, val or test row"
        )
    return NamedSplit(np.array([by_video[v] for v in vids], dtype=object), source)


def _parts_by_video(table, column: str, source: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for vid, value in zip(
        table.column("video_id").to_pylist(), table.column(column).to_pylist(), strict=True
    ):
        if vid is None or value is None:
            continue  # a missing part is reported if the video is actually used
        part = PART_NAMES.get(str(value).strip().lower())
        if part is None:
            raise ValueError(
                f"{source}: video {vid!r} has split {value!r}; use one of "
                f"{sorted(PART_NAMES)} (train, val or test)"
            )
        vid = str(vid)
        if out.get(vid, part) != part:
            raise ValueError(f"{source}: video {vid!r} is in two splits, {out[vid]} and {part}")
        out[vid] = part
    return out
