"""Labels and encoder choice of a store's rows, tables of video ids, read-time pooling.

The trainer streams features (``mixer.stream``) and uses the helpers here; ``mixer.inmemory``
reads a small store's selected rows into memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import torch
from torch import Tensor
from torch.nn import functional as F


class StoreReader(Protocol):
    """The part of `pipeline.store.FeatureStore` the trainer uses."""

    video_ids: list[str]
    encoders: list[str]
    time_steps: int
    grid: int
    shard_size: int

    def width(self, encoder: str) -> int: ...
    def read_rows(self, encoder: str, rows: np.ndarray) -> np.ndarray: ...
    def manifest(self) -> pa.Table: ...
    def ok_rows(self, encoders: Sequence[str] | None = None) -> np.ndarray: ...


def open_store(store: str | StoreReader) -> StoreReader:
    if not isinstance(store, str):
        return store  # already open (tests, notebooks)
    from pipeline.store import FeatureStore  # lazy: importing mixer does not load Zarr

    return FeatureStore.open(store)


# --- labels -------------------------------------------------------------------------------------


def read_table(path: str, columns: Sequence[str], what: str) -> pa.Table:
    """CSV / Parquet / JSONL (local path or fsspec URL) with at least ``columns``; ``what``
    names the file in errors ("labels file", "split file")."""
    import fsspec
    import pyarrow.csv as pcsv
    import pyarrow.json as pjson
    import pyarrow.parquet as pq

    lower = path.lower()
    with fsspec.open(path, "rb", compression="infer") as f:
        if lower.endswith((".parquet", ".pq")):
            table = pq.read_table(f)
        elif lower.endswith((".jsonl", ".ndjson", ".json", ".jsonl.gz")):
            table = pjson.read_json(f)
        elif lower.endswith((".csv", ".csv.gz", ".tsv")):
            delim = "\t" if lower.endswith(".tsv") else ","
            table = pcsv.read_csv(
                f,
                parse_options=pcsv.ParseOptions(delimiter=delim),
                convert_options=pcsv.ConvertOptions(column_types={"video_id": pa.string()}),
            )
        else:
            raise ValueError(f"{what} {path}: unknown format (use .csv, .parquet or .jsonl)")
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise ValueError(f"{what} {path} lacks column(s) {missing}; has {table.column_names}")
    return table


def read_label_table(path: str) -> pa.Table:
    """CSV / Parquet / JSONL (local path or fsspec URL) with columns video_id,label."""
    return read_table(path, ("video_id", "label"), "labels file")


def labels_by_video(table: pa.Table, source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for vid, label in zip(
        table.column("video_id").to_pylist(), table.column("label").to_pylist(), strict=True
    ):
        if vid is None or label is None:
            continue  # unlabeled rows are reported later if the video is actually used
        vid = str(vid)
        if vid in out and out[vid] != label:
            raise ValueError(f"{source}: video {vid!r} has two labels, {out[vid]!r} and {label!r}")
        out[vid] = label
    return out


def class_names(values: Sequence[Any]) -> list[Any]:
    """Sorted distinct labels (numeric order for numbers, so 2 < 10; mixed types by text)."""
    try:
        return sorted(set(values))
    except TypeError:
        return sorted(set(values), key=str)


# --- data ---------------------------------------------------------------------------------------


def pool_tokens(x: Tensor, grid: int, pool_grid: int | None) -> Tensor:
    """[n, T, G*G, C] -> [n, T, P*P, C] by adaptive_avg_pool2d over the (row-major) GxG grid."""
    if pool_grid is None or pool_grid == grid:
        return x
    if pool_grid > grid:
        raise ValueError(f"pool_grid {pool_grid} is larger than the stored grid {grid}")
    n, t, gg, c = x.shape
    y = x.reshape(n * t, grid, grid, c).permute(0, 3, 1, 2)
    y = F.adaptive_avg_pool2d(y, pool_grid)
    return y.permute(0, 2, 3, 1).reshape(n, t, pool_grid * pool_grid, c)


def choose_encoders(st: StoreReader, encoders: Sequence[str] | None, store_name: str) -> list[str]:
    """`encoders` in the given order (None: every encoder of the store); unknown ones refused."""
    chosen = list(st.encoders) if encoders is None else list(encoders)
    unknown = [e for e in chosen if e not in st.encoders]
    if unknown:
        raise ValueError(
            f"encoder(s) {unknown} not in store {store_name}; it has {list(st.encoders)}: pass "
            "--encoders with some of those, or extract the missing ones into the store first"
        )
    return chosen


def read_labels(st: StoreReader, labels: str | None, store_name: str) -> tuple[dict, str]:
    """video id -> label from the file `labels` or the manifest's `label` column, and where."""
    if labels is not None:
        source = f"labels file {labels}"
        return labels_by_video(read_label_table(labels), source), source
    man = st.manifest()
    source = f"the manifest of store {store_name} (column 'label')"
    if "label" not in man.column_names:
        raise ValueError(
            f"store {store_name} manifest has no 'label' column (columns: {man.column_names}); "
            "pass TrainConfig.labels=<csv/parquet/jsonl with video_id,label>"
        )
    return labels_by_video(man, source), source


def label_targets(
    vids: list[str], label_map: dict[str, Any], source: str
) -> tuple[list[Any], Tensor]:
    """Classes (sorted labels of `vids`) and each video's class index; every video needs one."""
    missing = [v for v in vids if v not in label_map]
    if missing:
        shown = ", ".join(repr(v) for v in missing[:5])
        more = " ..." if len(missing) > 5 else ""
        raise ValueError(
            f"{len(missing)} of {len(vids)} ok video(s) have no label in {source}: {shown}{more}; "
            "add a label for each of them (video_id,label rows)"
        )
    classes = class_names([label_map[v] for v in vids])
    index = {c: i for i, c in enumerate(classes)}
    return classes, torch.tensor([index[label_map[v]] for v in vids], dtype=torch.long)
