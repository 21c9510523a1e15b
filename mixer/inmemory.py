"""A small store's selected rows in memory, as float32: for notebooks, tests and checks.

The rows are what a training run would select (``mixer.selection.select_rows``); the trainer
itself streams (``mixer.stream``). Reading goes shard by shard, one ``read_rows`` call per shard
and encoder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from .config import TrainConfig
from .dataset import StoreReader, open_store, pool_tokens
from .selection import select_rows


@dataclass
class FeatureData:
    """All selected rows in memory: features[e] is float32 [N, T, G*G, C_e]."""

    features: list[Tensor]
    targets: Tensor  # int64 [N]
    video_ids: list[str]
    rows: np.ndarray
    encoders: list[str]
    widths: list[int]
    time_steps: int
    grid: int  # after read-time pooling
    classes: list[str]

    def __len__(self) -> int:
        return int(self.targets.shape[0])

    def batch(self, idx: Tensor) -> tuple[list[Tensor], Tensor]:
        return [f[idx] for f in self.features], self.targets[idx]

    def to(self, device: torch.device | str) -> FeatureData:
        self.features = [f.to(device) for f in self.features]
        self.targets = self.targets.to(device)
        return self


def load_features(
    store: str | StoreReader,
    encoders: Sequence[str] | None = None,
    labels: str | None = None,
    pool_grid: int | None = None,
    log: Callable[[str], None] = print,
) -> FeatureData:
    """The rows a training run over `store` would select, with their features, in memory.

    Rows, labels and classes are `mixer.selection.select_rows`' (ok for every chosen encoder,
    labels from `labels` or the manifest); features are pooled from the stored GxG grid to
    `pool_grid` while reading. Raises ValueError as `select_rows` does, or for a mis-shaped read.
    """
    config = TrainConfig(
        store=store, encoders=encoders, labels=labels, pool_grid=pool_grid, val_fraction=0.0
    )
    sel = select_rows(config, log)
    st = open_store(store)
    return FeatureData(
        features=read_features(st, sel.encoders, sel.widths, sel.rows, pool_grid, sel.store_url),
        targets=torch.from_numpy(sel.targets),
        video_ids=[st.video_ids[r] for r in sel.rows],
        rows=sel.rows,
        encoders=sel.encoders,
        widths=sel.widths,
        time_steps=int(st.time_steps),
        grid=sel.grid,
        classes=sel.classes,
    )


def read_features(
    st: StoreReader,
    chosen: list[str],
    widths: list[int],
    rows: np.ndarray,
    pool_grid: int | None,
    store_name: str,
) -> list[Tensor]:
    """float32 [len(rows), T, P*P, C_e] per encoder, read with one read_rows per shard."""
    grid_out = st.grid if pool_grid is None else pool_grid
    feats = [torch.empty(rows.size, st.time_steps, grid_out * grid_out, w) for w in widths]
    shard_of = rows // int(st.shard_size)
    for shard in np.unique(shard_of):
        pos = np.nonzero(shard_of == shard)[0]
        for e, name in enumerate(chosen):
            raw = np.asarray(st.read_rows(name, rows[pos]))
            expect = (pos.size, st.time_steps, st.grid * st.grid, widths[e])
            if raw.shape != expect:
                raise ValueError(
                    f"store {store_name} encoder {name}: read {raw.shape}, expected {expect}"
                )
            x = torch.from_numpy(raw.astype(np.float32, copy=False))
            feats[e][torch.from_numpy(pos)] = pool_tokens(x, st.grid, pool_grid)
    return feats
