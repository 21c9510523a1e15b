"""Streaming the cache: batches of stored features, read as training needs them.

Memory is flat in the number of rows: only the windows in flight are held, as float16 (float32
once pooled), never the corpus.

The order is a pure function of (seed, epoch), so the resumable state of a run is three numbers
(seed, epoch, next batch) and nothing larger:

1. the selected rows are grouped by store shard, and the shards are put in an order drawn
   from ``numpy.random.default_rng([seed, epoch])``;
2. consecutive shards of that order form windows of about ``shuffle_rows`` rows, whose rows
   are mixed (the bounded shuffle buffer); each window is read shard by shard, each shard in
   one run of chunks, so reads stay sequential on disk and on object stores alike (a selection
   that fits one window is mixed as the in-memory trainer mixed it: small stores train as
   before);
3. the concatenated windows are cut into global batches of ``batch_size`` rows (the last one
   may be smaller: every selected row comes exactly once per epoch);
4. rank ``r`` of ``world_size`` gets its part of every global batch (``numpy.array_split``), so
   N processes with B/N rows each take the same steps as one process with B.

Windows are read ahead by background processes started by ``spawn`` (never a fork: Zarr keeps
threads of its own), at most ``prefetch`` windows per worker; they arrive in window order,
whatever their number, so the batches do not depend on how many workers read them.
"""

from __future__ import annotations

import collections
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from .readers import ReaderPool, read_window


@dataclass(frozen=True)
class StreamConfig:
    batch_size: int  # rows per global batch (all ranks together)
    seed: int = 0
    shuffle_rows: int = 256  # rows mixed together (whole shards): the shuffle buffer
    num_workers: int = 2  # background reader processes; 0 reads in this process
    prefetch: int = 1  # windows read ahead per worker
    pool_grid: int | None = None  # read-time pooling of the GxG grid (must divide it)
    pool_time: int | None = None  # ... and of the time steps (must divide them)
    rank: int = 0
    world_size: int = 1

    def __post_init__(self) -> None:
        if self.batch_size < self.world_size or self.batch_size < 1:
            raise ValueError(
                f"batch_size {self.batch_size}: needs at least one row per rank "
                f"({self.world_size} ranks)"
            )
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank {self.rank} is not in 0..{self.world_size - 1}")
        if self.shuffle_rows < 1 or self.num_workers < 0 or self.prefetch < 1:
            raise ValueError("shuffle_rows and prefetch must be >= 1, num_workers >= 0")


@dataclass
class Batch:
    epoch: int
    index: int  # global batch number within the epoch
    rows: np.ndarray  # store rows of this rank's part, int64 [n]
    features: list[np.ndarray]  # per encoder [n, T, P*P, C]: float16, float32 when pooled
    targets: np.ndarray | None  # int64 [n] when the stream was given targets
    global_size: int  # rows of this batch over all ranks (weights a rank's loss)


def epoch_windows(
    rows: np.ndarray, shard_size: int, seed: int, epoch: int, shuffle_rows: int
) -> list[np.ndarray]:
    """The epoch's windows of row numbers, in reading order (a pure function of its inputs):
    whole shards in an order drawn from (seed, epoch), gathered until a window holds
    ``shuffle_rows`` rows, each window's rows mixed."""
    rows = np.sort(np.asarray(rows, dtype=np.int64))
    if rows.size <= shuffle_rows:
        return [rows[_small_store_order(rows.size, seed, epoch)]]
    shard_of = rows // shard_size
    shards, starts = np.unique(shard_of, return_index=True)
    stops = np.append(starts[1:], rows.size)
    rng = np.random.default_rng([seed, epoch])
    windows, picked, held = [], [], 0
    for last, i in enumerate(rng.permutation(shards.size), 1 - shards.size):
        picked.append(rows[starts[i] : stops[i]])
        held += stops[i] - starts[i]
        if held >= shuffle_rows or last == 0:  # full, or the epoch's last shard
            window = np.concatenate(picked)
            windows.append(window[rng.permutation(window.size)])
            picked, held = [], 0
    return windows


def _small_store_order(n: int, seed: int, epoch: int) -> np.ndarray:
    """One window holds every row: the order the in-memory trainer used (the epoch-th
    ``torch.randperm`` of a generator seeded with ``seed``), so small stores train as before."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    for _ in range(epoch):
        torch.randperm(n, generator=generator)
    return torch.randperm(n, generator=generator).numpy()


def rank_positions(
    lo: int, hi: int, total: int, batch_size: int, rank: int, world: int
) -> np.ndarray:
    """Of the epoch positions ``lo..hi-1``, those that fall to ``rank``: its
    ``numpy.array_split`` part of each global batch (``total`` rows in the epoch)."""
    pos = np.arange(lo, hi, dtype=np.int64)
    within = pos % batch_size
    size = np.minimum(batch_size, total - (pos - within))  # the size of each one's batch
    q, rem = np.divmod(size, world)
    first = rank * q + np.minimum(rank, rem)
    return pos[(within >= first) & (within < first + q + (rank < rem))]


class FeatureStream:
    """Batches of ``encoders``' features over ``rows`` of the store at ``store_url``."""

    def __init__(
        self,
        store_url: str,
        encoders: Sequence[str],
        rows: np.ndarray,
        config: StreamConfig,
        targets: np.ndarray | None = None,
        readers: ReaderPool | None = None,
    ):
        """``readers``: background reader processes, shared by every stream of a run (None:
        a pool of ``config.num_workers`` of this stream's own, closed with ``close()``)."""
        from pipeline.store import FeatureStore

        store = FeatureStore.open(store_url)
        self.store_url, self.encoders, self.config = store_url, list(encoders), config
        self.rows = np.sort(np.asarray(rows, dtype=np.int64))
        self.targets = None if targets is None else np.asarray(targets, np.int64)
        if self.targets is not None and self.targets.shape != self.rows.shape:
            raise ValueError("targets must give one value per row, in the order of rows")
        self.shard_size, self.grid, self.time_steps = store.shard_size, store.grid, store.time_steps
        _check_pool(config.pool_grid, self.grid, "pool_grid", "grid")
        _check_pool(config.pool_time, self.time_steps, "pool_time", "time steps")
        self._whole: list[np.ndarray] | None = None  # a one-window selection, read once
        self._whole_read = None  # ... or its read by a reader, asked for early (`prefetch`)
        self._ahead: dict[int, tuple] = {}  # epoch -> (its plan, reads asked for early)
        self._own_readers = readers is None
        self.readers = readers if readers is not None else ReaderPool(config.num_workers)

    def close(self) -> None:
        if self._own_readers:
            self.readers.close()

    def __enter__(self) -> FeatureStream:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __len__(self) -> int:
        """Global batches per epoch."""
        return -(-self.rows.size // self.config.batch_size)

    def epoch(self, epoch: int, start_batch: int = 0, then=None) -> Iterator[Batch]:
        """This rank's batches of ``epoch`` from global batch ``start_batch`` on; ``then()``
        is called once every window of the epoch has been asked for (a caller starts the reads
        of what comes next there: they overlap the epoch's last batches)."""
        carry: list[tuple[np.ndarray, np.ndarray, list[np.ndarray]]] = []
        for window in self._windows(epoch, start_batch * self.config.batch_size, then):
            yield from self._batches(epoch, carry, *window)
        last = None
        for batch in self._batches(epoch, carry, None, None, None):
            last = batch.index
            yield batch
        if len(self) - 1 >= start_batch and last != len(self) - 1:
            # a last global batch smaller than the ranks: this rank's part is empty, but it
            # still takes the step with the others (collectives stay in step)
            yield self._empty(epoch, len(self) - 1)

    def prefetch(self, epoch: int) -> None:
        """Ask the readers now for the first window of ``epoch`` (from its first batch), so
        that it is read while the pass before it ends: one window more in memory at most.
        Batches are unchanged. Nothing without reader processes, or for a selection already
        read."""
        if self.rows.size <= self.config.shuffle_rows:
            if self._whole is None and self._whole_read is None and self.readers.started:
                self._whole_read = self.readers.submit(self.rows, *self._read_args())
        elif self.readers.workers and epoch not in self._ahead:
            plan, pending = collections.deque(self._plan(epoch, 0)), collections.deque()
            self._submit(plan, pending, most=1)
            self._ahead[epoch] = (plan, pending)

    def _read_args(self) -> tuple:
        cfg = self.config
        return self.store_url, self.encoders, cfg.pool_grid, cfg.pool_time

    def _submit(self, plan: collections.deque, pending: collections.deque, most=None) -> None:
        """Ask for the plan's next windows until ``prefetch`` windows per reader (or ``most``)
        are pending."""
        most = most or max(1, self.readers.workers) * self.config.prefetch
        while plan and len(pending) < most:
            positions, rows = plan.popleft()
            pending.append((positions, rows, self.readers.submit(rows, *self._read_args())))

    def _windows(self, epoch: int, skip: int, then=None) -> Iterator[tuple]:
        """(positions, rows, features) of this rank's part of each window, read ahead by the
        readers; a selection that fits one window is read once and kept (it is the window)."""
        if self.rows.size <= self.config.shuffle_rows:
            if self._whole is None:  # small: read here, unless a reader was asked already
                read, self._whole_read = self._whole_read, None
                self._whole = read.result() if read else read_window(self.rows, *self._read_args())
            if then is not None:
                then()
            for positions, rows in self._plan(epoch, skip):
                index = np.searchsorted(self.rows, rows)
                yield positions, rows, [f[index] for f in self._whole]
            return
        early = self._ahead.pop(epoch, None) if skip == 0 else None
        plan, pending = early or (collections.deque(self._plan(epoch, skip)), collections.deque())
        try:
            while plan or pending:
                self._submit(plan, pending)
                if not plan and then is not None:  # every window asked for
                    then()
                    then = None
                yield _result(pending.popleft())
        finally:
            for *_, future in pending:  # a consumer that stopped early: drop the reads ahead
                future.cancel()

    def _plan(self, epoch: int, skip: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """(epoch positions, rows) of this rank in each window, skipping the first ``skip``."""
        cfg, total, lo = self.config, self.rows.size, 0
        windows = epoch_windows(self.rows, self.shard_size, cfg.seed, epoch, cfg.shuffle_rows)
        for window in windows:
            hi = lo + window.size
            if hi > skip:
                pos = rank_positions(
                    max(lo, skip), hi, total, cfg.batch_size, cfg.rank, cfg.world_size
                )
                if pos.size:
                    yield pos, window[pos - lo]
            lo = hi

    def _batches(self, epoch, carry, positions, rows, features) -> Iterator[Batch]:
        """Add a window's rows to ``carry``; yield every batch that is complete (all of it,
        at the end: ``positions`` None)."""
        if positions is not None:
            carry.append((positions, rows, features))
        if not carry:
            return
        pos = np.concatenate([c[0] for c in carry])
        batch_of = pos // self.config.batch_size
        done = batch_of < batch_of[-1] if positions is not None else np.ones(pos.size, bool)
        if not done.any():
            return
        all_rows = np.concatenate([c[1] for c in carry])
        feats = [np.concatenate([c[2][e] for c in carry]) for e in range(len(self.encoders))]
        keep = ~done
        carry[:] = [(pos[keep], all_rows[keep], [f[keep] for f in feats])] if keep.any() else []
        for b in np.unique(batch_of[done]):
            sel = batch_of == b
            yield self._batch(epoch, int(b), all_rows[sel], [f[sel] for f in feats])

    def _empty(self, epoch: int, index: int) -> Batch:
        """This rank's empty part of global batch ``index`` (shapes as read, zero rows)."""
        none = np.zeros(0, np.int64)
        return self._batch(epoch, index, none, read_window(none, *self._read_args()))

    def _batch(self, epoch: int, index: int, rows: np.ndarray, feats: list) -> Batch:
        size = min(self.config.batch_size, self.rows.size - index * self.config.batch_size)
        targets = None
        if self.targets is not None:
            targets = self.targets[np.searchsorted(self.rows, rows)]
        return Batch(epoch, index, rows, feats, targets, size)


def _check_pool(value: int | None, stored: int, field: str, what: str) -> None:
    if value is not None and (value < 1 or stored % value):
        raise ValueError(f"{field} {value}: must divide the store's {what} ({stored})")


def _result(entry) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    positions, rows, future = entry
    return positions, rows, future.result()
