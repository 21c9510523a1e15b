"""Reading windows of stored features: in background processes started by ``spawn`` (never a
fork: Zarr keeps threads of its own), or in this process; with optional read-time pooling."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np


class ReaderPool:
    """Background reader processes (``spawn``), or none: reads in this process."""

    def __init__(self, workers: int):
        import fsspec

        self.workers, self.pool = workers, None
        self.started = False  # reader processes were asked for (they start on demand)
        if workers:
            self.pool = ProcessPoolExecutor(
                workers,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_open_in_worker,
                initargs=(
                    dict(fsspec.config.conf),
                    os.getpid(),
                ),  # e.g. an S3 endpoint set in this process
            )

    def warm(self) -> None:
        """Start every reader now and have it import the read path (Zarr, torch for pooling):
        seconds per process, spent while the caller builds its models, not when the first
        batch is due."""
        if self.pool is not None:
            self.started = True
            for _ in range(self.workers):
                self.pool.submit(_import_read_path)

    def submit(self, rows: np.ndarray, *args):
        if self.pool is not None:
            self.started = True
            return self.pool.submit(read_window, rows, *args)
        return _Done(read_window(rows, *args))

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(cancel_futures=True)

    def __enter__(self) -> ReaderPool:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class _Done:
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value

    def cancel(self) -> bool:
        return False


_STORES: dict[str, object] = {}  # per process: a worker opens each store once


def _open_in_worker(fsspec_conf: dict, parent: int) -> None:
    import fsspec

    fsspec.config.conf.update(fsspec_conf)
    # A reader outlives a trainer killed by SIGKILL (nothing shuts the pool down): it leaves
    # as soon as it is orphaned, instead of waiting forever for work that never comes.
    threading.Thread(target=_exit_when_orphaned, args=(parent,), daemon=True).start()


def _import_read_path() -> None:
    import pipeline.store  # noqa: F401
    from mixer.dataset import pool_tokens  # noqa: F401  (torch: read-time pooling)


def _exit_when_orphaned(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


def read_window(
    rows: np.ndarray, store_url: str, encoders: list[str], pool_grid, pool_time
) -> list[np.ndarray]:
    """Features of ``rows`` (in the order given) for each encoder, pooled if asked; an encoder
    named twice (a distillation's student and teacher both read it) is read once."""
    from pipeline.store import FeatureStore

    store = _STORES.get(store_url)
    if store is None:
        store = _STORES[store_url] = FeatureStore.open(store_url)
    read: dict[str, np.ndarray] = {}
    for name in encoders:
        if name not in read:
            x = _read_runs(store, name, np.asarray(rows, dtype=np.int64))
            read[name] = pool_features(x, store.grid, pool_grid, pool_time)
    return [read[name] for name in encoders]


def _read_runs(store, encoder: str, rows: np.ndarray) -> np.ndarray:
    """``rows`` of ``encoder`` in the order given: each shard touched read in one run of
    chunks (its first to its last wanted row), sequential on disk and on object stores."""
    if not rows.size:
        return np.asarray(store.read_rows(encoder, rows))
    shard_of = rows // store.shard_size
    parts, where = [], []
    for shard in np.unique(shard_of):
        pos = np.nonzero(shard_of == shard)[0]
        lo, hi = int(rows[pos].min()), int(rows[pos].max()) + 1
        parts.append(np.asarray(store.read(encoder, lo, hi))[rows[pos] - lo])
        where.append(pos)
    out = np.empty((rows.size, *parts[0].shape[1:]), parts[0].dtype)
    for pos, part in zip(where, parts, strict=True):
        out[pos] = part
    return out


def pool_features(x: np.ndarray, grid: int, pool_grid: int | None, pool_time: int | None):
    """float16 [n, T, G*G, C] -> float32 [n, T', P*P, C] by average pooling (torch's
    ``adaptive_avg_pool2d`` / ``1d``, as the in-memory dataset pools); unchanged when neither
    is asked."""
    if pool_grid in (None, grid) and pool_time in (None, x.shape[1]):
        return x
    import torch

    from mixer.dataset import pool_tokens

    y = pool_tokens(torch.from_numpy(x.astype(np.float32)), grid, pool_grid)
    if pool_time not in (None, x.shape[1]):
        n, t, g, c = y.shape
        y = y.permute(0, 2, 3, 1).reshape(n, g * c, t)
        y = torch.nn.functional.adaptive_avg_pool1d(y, pool_time)
        y = y.reshape(n, g, c, pool_time).permute(0, 3, 1, 2)
    return y.contiguous().numpy()
