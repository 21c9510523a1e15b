"""The streaming dataset (mixer/stream.py): exact epochs, an order that is a function of
(seed, epoch) only, the same batches whatever the worker count, rank split and resume point,
and the same batches from a store on the loopback S3 server as from local disk."""

from __future__ import annotations

import numpy as np
import pytest

from mixer.stream import FeatureStream, StreamConfig, epoch_windows, rank_positions
from tests.mixer.conftest import G, T, write_store

N, SHARD = 70, 8  # 9 shards, the last one short
WIDTHS = {"a": 4, "b": 3}
FAILED = (5, 33)


def features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        name: rng.normal(size=(N, T, G * G, c)).astype(np.float16) for name, c in WIDTHS.items()
    }


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    url = str(tmp_path_factory.mktemp("stream") / "store.zarr")
    feats = features()
    store = write_store(url, feats, labels=None, failed=FAILED, shard_size=SHARD)
    return url, feats, store.ok_rows(["a", "b"])


def collect(stream: FeatureStream, epoch: int, start: int = 0) -> list:
    return list(stream.epoch(epoch, start))


def flat_rows(batches) -> np.ndarray:
    return np.concatenate([b.rows for b in batches])


def test_every_ok_row_exactly_once_with_its_features(stored):
    url, feats, rows = stored
    stream = FeatureStream(url, ["b", "a"], rows, StreamConfig(batch_size=6, num_workers=0))
    batches = collect(stream, 0)
    got = flat_rows(batches)
    assert sorted(got.tolist()) == [r for r in range(N) if r not in FAILED]
    assert [b.index for b in batches] == list(range(len(stream))) == list(range(12))
    assert [len(b.rows) for b in batches] == [6] * 11 + [2]  # 68 rows, the last batch short
    for b in batches:  # the encoders in the order asked, each row's own stored values
        np.testing.assert_array_equal(b.features[0], feats["b"][b.rows])
        np.testing.assert_array_equal(b.features[1], feats["a"][b.rows])
        assert b.features[0].dtype == np.float16


def test_order_is_a_function_of_seed_and_epoch(stored):
    url, _, rows = stored
    cfg = StreamConfig(batch_size=5, seed=3, shuffle_rows=30, num_workers=0)
    stream = FeatureStream(url, ["a"], rows, cfg)
    first = flat_rows(collect(stream, 0))
    np.testing.assert_array_equal(
        first, flat_rows(collect(FeatureStream(url, ["a"], rows, cfg), 0))
    )
    assert not np.array_equal(first, flat_rows(collect(stream, 1)))  # another epoch
    other_seed = FeatureStream(
        url, ["a"], rows, StreamConfig(batch_size=5, seed=4, shuffle_rows=30, num_workers=0)
    )
    assert not np.array_equal(first, flat_rows(collect(other_seed, 0)))
    # shuffled, yet read window by window: whole shards, until a window holds shuffle_rows
    windows = epoch_windows(rows, SHARD, seed=3, epoch=0, shuffle_rows=30)
    np.testing.assert_array_equal(first, np.concatenate(windows))
    shards = [set(w // SHARD) for w in windows]
    assert sorted(s for w in shards for s in w) == list(range(9))  # each shard in one window
    assert all(len(w) >= 30 for w in windows[:-1]) and len(windows) == 3
    assert all(len(w) - SHARD < 30 for w in windows[:-1])  # no more shards than needed
    assert not np.array_equal(first, np.sort(first))


def test_a_selection_that_fits_one_window_is_mixed_as_the_in_memory_trainer_did(stored):
    import torch

    url, _, rows = stored
    stream = FeatureStream(url, ["a"], rows, StreamConfig(batch_size=8, seed=7, num_workers=0))
    generator = torch.Generator().manual_seed(7)
    for epoch in range(3):  # the old trainer: one generator, one randperm per epoch
        want = np.sort(rows)[torch.randperm(rows.size, generator=generator).numpy()]
        np.testing.assert_array_equal(flat_rows(collect(stream, epoch)), want)


def test_two_workers_give_the_batches_of_one_and_of_none(stored):
    url, _, rows = stored

    def run(workers: int):
        cfg = StreamConfig(batch_size=4, seed=1, shuffle_rows=16, num_workers=workers)
        with FeatureStream(url, ["a", "b"], rows, cfg) as stream:
            return collect(stream, 2)

    none, two = run(0), run(2)
    assert len(none) == len(two) == 17
    for x, y in zip(none, two, strict=True):
        assert (x.index, x.global_size) == (y.index, y.global_size)
        np.testing.assert_array_equal(x.rows, y.rows)
        for fx, fy in zip(x.features, y.features, strict=True):
            np.testing.assert_array_equal(fx, fy)


def test_ranks_split_each_global_batch(stored):
    url, _, rows = stored

    def rank(r: int, world: int):
        cfg = StreamConfig(batch_size=6, seed=2, num_workers=0, rank=r, world_size=world)
        return collect(FeatureStream(url, ["a"], rows, cfg), 0)

    whole, parts = rank(0, 1), [rank(r, 3) for r in range(3)]
    for i, batch in enumerate(whole):
        pieces = [p[i] for p in parts]
        assert {p.index for p in pieces} == {batch.index}
        assert {p.global_size for p in pieces} == {batch.global_size}
        np.testing.assert_array_equal(np.concatenate([p.rows for p in pieces]), batch.rows)
    # the last global batch holds 2 rows: ranks 0 and 1 get one each, rank 2 an empty part
    # (array_split), so that every rank takes every step
    assert [len(parts[r][-1].rows) for r in range(3)] == [1, 1, 0]
    assert parts[2][-1].features[0].shape == (0, T, G * G, WIDTHS["a"])


def test_rank_positions_follow_array_split():
    total, batch, world = 23, 10, 4
    for rank in range(world):
        want = [
            b * batch + i
            for b in range(3)
            for i in np.array_split(np.arange(min(batch, total - b * batch)), world)[rank]
        ]
        assert rank_positions(0, total, total, batch, rank, world).tolist() == want


def test_resume_mid_epoch_gives_the_rest_of_the_epoch(stored):
    url, _, rows = stored
    cfg = StreamConfig(batch_size=4, seed=5, shuffle_rows=24, num_workers=0)
    stream = FeatureStream(url, ["a"], rows, cfg)
    whole = collect(stream, 1)
    rest = collect(stream, 1, start=7)
    assert [b.index for b in rest] == [b.index for b in whole[7:]]
    for x, y in zip(whole[7:], rest, strict=True):
        np.testing.assert_array_equal(x.rows, y.rows)
        np.testing.assert_array_equal(x.features[0], y.features[0])


def test_targets_follow_their_rows(stored):
    url, _, rows = stored
    targets = rows * 10 + 1
    cfg = StreamConfig(batch_size=8, num_workers=0)
    for b in collect(FeatureStream(url, ["a"], rows, cfg, targets=targets), 0):
        np.testing.assert_array_equal(b.targets, b.rows * 10 + 1)


def test_read_time_pooling_of_grid_and_time(stored):
    url, feats, rows = stored
    cfg = StreamConfig(batch_size=8, num_workers=0, pool_grid=2, pool_time=8)
    batch = next(FeatureStream(url, ["a"], rows, cfg).epoch(0))
    x = feats["a"][batch.rows].astype(np.float32).reshape(-1, 8, 2, 2, 4, 2, 4, 4)
    want = x.mean(axis=(2, 4, 6)).reshape(-1, 8, 4, 4)  # 2 steps, 4x4 cells per output
    assert batch.features[0].shape == (8, 8, 4, 4)
    np.testing.assert_allclose(batch.features[0], want, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="pool_grid 3: must divide the store's grid"):
        FeatureStream(url, ["a"], rows, StreamConfig(batch_size=8, pool_grid=3))


def test_a_store_on_s3_gives_the_batches_of_the_local_store(stored, s3_server, monkeypatch):
    import fsspec

    url, _, rows = stored
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(s3_server))
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("stream")
    fs.put(url, "stream/store.zarr", recursive=True)
    cfg = StreamConfig(batch_size=6, seed=9, shuffle_rows=16, num_workers=2)
    with FeatureStream(url, ["a", "b"], rows, cfg) as stream:
        local = collect(stream, 0)
    with FeatureStream("s3://stream/store.zarr", ["a", "b"], rows, cfg) as stream:
        remote = collect(stream, 0)
    assert len(local) == len(remote) == 12
    for x, y in zip(local, remote, strict=True):
        np.testing.assert_array_equal(x.rows, y.rows)
        for fx, fy in zip(x.features, y.features, strict=True):
            np.testing.assert_array_equal(fx, fy)


def test_readers_start_with_the_run_only_when_its_streams_use_them(stored):
    # Started at once, readers import the read path while the models are built; a run whose
    # every part fits one window reads in its own process and must not pay for them.
    from types import SimpleNamespace

    from mixer.config import TrainConfig
    from mixer.epochs import open_readers

    url, _, rows = stored
    for shuffle_rows, streamed in ((16, True), (len(rows), False)):
        cfg = TrainConfig(store=url, loader_workers=2, shuffle_rows=shuffle_rows)
        with open_readers(cfg, SimpleNamespace(rows=rows)) as readers:
            assert readers.workers == 2
            assert bool(readers.pool._processes) == streamed  # before any window is asked for


def test_reads_asked_for_early_give_the_same_batches(stored):
    # `prefetch` and `then` let a run ask for the next pass's windows while this one ends:
    # the batches must not change, and `then` comes once, before the epoch's last batch.
    url, _, rows = stored
    cfg = StreamConfig(batch_size=4, seed=1, shuffle_rows=16, num_workers=2)
    small = rows[:12]  # fits one window: read once, by a reader when one runs
    with FeatureStream(url, ["a", "b"], rows, cfg) as plain:
        expected = [collect(plain, e) for e in (0, 1)]
    alone = StreamConfig(batch_size=4, seed=1, shuffle_rows=16, num_workers=0)
    with FeatureStream(url, ["a", "b"], small, alone) as plain:
        expected_small = collect(plain, 0)
    with (
        FeatureStream(url, ["a", "b"], rows, cfg) as stream,
        FeatureStream(url, ["a", "b"], small, cfg, readers=stream.readers) as val,
    ):
        calls = []
        seen = []
        for batch in stream.epoch(0, then=lambda: calls.append(len(seen))):
            seen.append(batch)
            if len(calls) == 0 and len(seen) == 1:
                val.prefetch(0)  # the readers run now: the small read goes to one of them
                stream.prefetch(1)
        assert len(calls) == 1 and 0 < calls[0] < len(seen)  # once, before the last batch
        assert val._whole_read is not None and 1 in stream._ahead
        assert len(stream._ahead[1][1]) == 1  # one window more in memory, not a reader's share
        got = [seen, collect(stream, 1)]
        got_small = collect(val, 0)
        stream.prefetch(0)  # then resumed from batch 2: the early reads are not its windows
        resumed = collect(stream, 0, 2)
    np.testing.assert_array_equal(flat_rows(resumed), flat_rows(expected[0][2:]))
    for want, have in zip([*expected, expected_small], [*got, got_small], strict=True):
        assert len(want) == len(have)
        for x, y in zip(want, have, strict=True):
            np.testing.assert_array_equal(x.rows, y.rows)
            for fx, fy in zip(x.features, y.features, strict=True):
                np.testing.assert_array_equal(fx, fy)
