"""The cached-feature dataset over a real FeatureStore: labels, selection, pooling, split."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mixer.dataset import class_names, pool_tokens
from mixer.inmemory import load_features
from mixer.splits import split_indices
from tests.helpers import quiet


def small_features(n: int, widths: dict[str, int], seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=(n, 16, 64, c)).astype(np.float16) for k, c in widths.items()}


def test_reads_ok_rows_with_manifest_labels(store_factory):
    feats = small_features(20, {"enc-a": 6, "enc-b": 10})
    labels = ["cat" if i % 3 else "dog" for i in range(20)]
    url, _ = store_factory(feats, labels, failed=[3, 17], shard_size=8)
    messages: list[str] = []
    data = load_features(url, log=messages.append)
    ok = [i for i in range(20) if i not in (3, 17)]
    assert data.encoders == ["enc-a", "enc-b"] and data.widths == [6, 10]
    assert data.rows.tolist() == ok and data.video_ids == [f"vid{i:04d}" for i in ok]
    assert data.classes == ["cat", "dog"]
    assert data.targets.tolist() == [0 if labels[i] == "cat" else 1 for i in ok]
    assert data.features[1].dtype == torch.float32 and data.features[1].shape == (18, 16, 64, 10)
    torch.testing.assert_close(
        data.features[1], torch.from_numpy(feats["enc-b"][ok].astype(np.float32))
    )
    assert any("2 row(s)" in m for m in messages)


def test_encoder_subset_order_and_unknown_encoder(store_factory):
    url, _ = store_factory(small_features(4, {"a": 2, "b": 3, "c": 4}), [0, 1, 0, 1], shard_size=4)
    assert load_features(url, encoders=["c", "a"], log=quiet).widths == [4, 2]
    with pytest.raises(ValueError, match=r"\['zzz'\] not in store.*'a', 'b', 'c'"):
        load_features(url, encoders=["zzz"], log=quiet)


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_labels_file_formats(store_factory, tmp_path, fmt):
    url, _ = store_factory(small_features(6, {"a": 2}), None, shard_size=4)
    vids = [f"vid{i:04d}" for i in range(6)]
    labels = [i % 3 for i in range(6)]
    path = tmp_path / f"labels.{fmt}"
    if fmt == "csv":
        path.write_text(
            "video_id,label\n" + "".join(f"{v},{y}\n" for v, y in zip(vids, labels, strict=True))
        )
    elif fmt == "jsonl":
        path.write_text(
            "".join(
                json.dumps({"video_id": v, "label": y}) + "\n"
                for v, y in zip(vids, labels, strict=True)
            )
        )
    else:
        pq.write_table(pa.table({"video_id": vids, "label": labels}), path)
    data = load_features(url, labels=str(path), log=quiet)
    assert data.targets.tolist() == labels and data.classes == ["0", "1", "2"]


def test_missing_label_names_file_and_video(store_factory, tmp_path):
    url, _ = store_factory(small_features(5, {"a": 2}), None, shard_size=4)
    path = tmp_path / "labels.csv"
    path.write_text("video_id,label\n" + "".join(f"vid{i:04d},x\n" for i in (0, 1, 2, 4)))
    with pytest.raises(ValueError) as err:
        load_features(url, labels=str(path), log=quiet)
    assert str(path) in str(err.value) and "'vid0003'" in str(err.value)


def test_missing_manifest_label_column_is_explained(store_factory):
    url, _ = store_factory(small_features(3, {"a": 2}), None, shard_size=4)
    with pytest.raises(ValueError, match="no 'label' column.*TrainConfig.labels"):
        load_features(url, log=quiet)


def test_read_time_pooling_matches_grid_means(store_factory):
    feats = small_features(3, {"a": 5})
    url, _ = store_factory(feats, [0, 1, 0], shard_size=2)
    data = load_features(url, pool_grid=4, log=quiet)
    assert data.grid == 4 and data.features[0].shape == (3, 16, 16, 5)
    x = torch.from_numpy(feats["a"].astype(np.float32)).reshape(3, 16, 8, 8, 5)
    # Token (1, 2) of the 4x4 grid is the mean of rows 2-3, columns 4-5 of the 8x8 grid.
    expect = x[:, :, 2:4, 4:6].mean(dim=(2, 3))
    torch.testing.assert_close(data.features[0][:, :, 1 * 4 + 2], expect)
    with pytest.raises(ValueError, match="larger than the stored grid"):
        pool_tokens(torch.zeros(1, 1, 64, 1), 8, 16)


def test_split_is_deterministic_and_stratified():
    y = np.array([0] * 30 + [1] * 10)
    tr, va = split_indices(y, 0.2, seed=7)
    tr2, va2 = split_indices(y, 0.2, seed=7)
    assert tr.tolist() == tr2.tolist() and va.tolist() == va2.tolist()
    assert sorted(tr.tolist() + va.tolist()) == list(range(40))
    assert (y[va] == 0).sum() == 6 and (y[va] == 1).sum() == 2
    assert split_indices(y, 0.2, seed=8)[1].tolist() != va.tolist()
    assert split_indices(y, 0.0, seed=0)[1].size == 0


# --- split: the rule written out ----------------------------------------------------------------
# Per class with n examples: round(val_fraction * n) go to validation, but never all of them
# (at least one training example per class); which ones depends only on the seed.


def _interleaved(counts: dict[int, int], seed: int = 0) -> np.ndarray:
    """Labels with the given per-class counts, classes mixed in a fixed random order."""
    y = np.concatenate([np.full(n, c) for c, n in counts.items()])
    return np.random.default_rng(seed).permutation(y)


@pytest.mark.parametrize(
    ("counts", "fraction", "expect_val"),
    [
        # 0.3*50=15, 0.3*20=6, 0.3*7=2.1->2, 0.3*3=0.9->1, 0.3*1=0.3->0
        ({0: 50, 1: 20, 2: 7, 3: 3, 4: 1}, 0.3, {0: 15, 1: 6, 2: 2, 3: 1, 4: 0}),
        # 0.6*5=3, 0.6*2=1.2->1, 0.6*1=0.6->1 but the only example must stay in training -> 0
        ({0: 5, 1: 2, 2: 1}, 0.6, {0: 3, 1: 1, 2: 0}),
    ],
)
def test_split_per_class_counts_for_every_seed(counts, fraction, expect_val):
    y = _interleaved(counts)
    val_sets = set()
    for seed in range(10):
        tr, va = split_indices(y, fraction, seed=seed)
        assert set(tr.tolist()).isdisjoint(va.tolist())
        assert sorted(tr.tolist() + va.tolist()) == list(range(y.size))
        got_val = {c: int((y[va] == c).sum()) for c in counts}
        assert got_val == expect_val, f"seed {seed}"
        got_train = {c: int((y[tr] == c).sum()) for c in counts}
        assert got_train == {c: counts[c] - expect_val[c] for c in counts}
        assert min(got_train.values()) >= 1
        again = split_indices(y, fraction, seed=seed)
        assert again[0].tolist() == tr.tolist() and again[1].tolist() == va.tolist()
        val_sets.add(tuple(va.tolist()))
    # The seed picks which examples (a fixed rule, e.g. "the first rows", would give one set).
    assert len(val_sets) >= 5


def test_split_validation_is_not_a_fixed_block_of_each_class():
    """Over many seeds every example of a class lands in validation at some point."""
    y = _interleaved({0: 12, 1: 8}, seed=3)
    seen = set()
    for seed in range(40):
        seen.update(split_indices(y, 0.25, seed=seed)[1].tolist())
    assert seen == set(range(20))


# --- read-time pooling, written out -------------------------------------------------------------


def _grid_tensor(n: int, t: int, grid: int, c: int) -> torch.Tensor:
    """x[b, s, r*grid + col, ch] = 10000 b + 1000 s + 100 ch + grid*r + col (all distinct)."""
    x = torch.empty(n, t, grid * grid, c, dtype=torch.float64)
    for b in range(n):
        for s in range(t):
            for r in range(grid):
                for col in range(grid):
                    for ch in range(c):
                        x[b, s, r * grid + col, ch] = (
                            10000 * b + 1000 * s + 100 * ch + grid * r + col
                        )
    return x


def test_pool_8_to_4_is_the_mean_of_each_2x2_block():
    x = _grid_tensor(2, 3, 8, 2)
    y = pool_tokens(x, 8, 4)
    assert y.shape == (2, 3, 16, 2)
    for b in range(2):
        for s in range(3):
            for i in range(4):
                for j in range(4):
                    for ch in range(2):
                        # mean over rows 2i, 2i+1 and columns 2j, 2j+1 of 8r + col
                        cell = 8 * (2 * i + 0.5) + (2 * j + 0.5)
                        expect = 10000 * b + 1000 * s + 100 * ch + cell
                        assert float(y[b, s, 4 * i + j, ch]) == pytest.approx(expect), (i, j)


def test_pool_8_to_3_uses_adaptive_overlapping_bins():
    # adaptive_avg_pool2d bins for 8 -> 3: [floor(8i/3), ceil(8(i+1)/3)) = [0,3), [2,6), [5,8)
    bin_mean = [1.0, 3.5, 6.0]  # mean of 0..2, 2..5, 5..7
    x = _grid_tensor(1, 2, 8, 1)
    y = pool_tokens(x, 8, 3)
    assert y.shape == (1, 2, 9, 1)
    for s in range(2):
        for i in range(3):
            for j in range(3):
                expect = 1000 * s + 8 * bin_mean[i] + bin_mean[j]
                assert float(y[0, s, 3 * i + j, 0]) == pytest.approx(expect)


def test_pool_to_same_grid_or_none_is_identity():
    x = _grid_tensor(1, 2, 4, 2)
    assert pool_tokens(x, 4, None) is x and pool_tokens(x, 4, 4) is x


# --- labels and selection -----------------------------------------------------------------------


def test_numeric_labels_are_ordered_as_numbers():
    assert class_names([10, 2, 1, 2]) == [1, 2, 10]
    assert class_names([2.5, 10.0, -1.0]) == [-1.0, 2.5, 10.0]
    assert class_names(["b", "a", "c"]) == ["a", "b", "c"]
    assert class_names(["b", 3, "a"]) == [3, "a", "b"]  # mixed types: by text


def test_integer_manifest_labels_map_to_numeric_class_order(store_factory):
    labels = [10, 2, 1, 2, 10, 1]
    url, _ = store_factory(small_features(6, {"a": 2}), labels, shard_size=4)
    data = load_features(url, log=quiet)
    assert data.classes == ["1", "2", "10"]
    assert data.targets.tolist() == [2, 1, 0, 1, 2, 0]


def test_rows_not_ok_are_skipped_with_their_labels(store_factory):
    """Failed rows are left out entirely: no features, no target, no class of their own."""
    feats = small_features(10, {"a": 3, "b": 2}, seed=5)
    labels = ["cat", "dog", "zebra", "cat", "dog", "cat", "dog", "zebra", "cat", "dog"]
    url, _ = store_factory(feats, labels, failed=[2, 7, 9], shard_size=4)
    messages: list[str] = []
    data = load_features(url, log=messages.append)
    ok = [0, 1, 3, 4, 5, 6, 8]
    assert data.rows.tolist() == ok and len(data) == 7
    assert data.video_ids == [f"vid{i:04d}" for i in ok]
    assert data.classes == ["cat", "dog"]  # "zebra" only labels failed rows
    assert data.targets.tolist() == [0, 1, 0, 1, 0, 1, 0]
    for e, name in enumerate(["a", "b"]):
        torch.testing.assert_close(
            data.features[e], torch.from_numpy(feats[name][ok].astype(np.float32))
        )
    assert any("skipping 3 row(s)" in m for m in messages)


def test_rows_are_ok_for_the_chosen_encoders_not_every_encoder(tmp_path):
    """Encoder b is extracted for shard 0 only: training on a alone still uses every row."""
    from pipeline.store import FeatureStore

    feats = small_features(8, {"a": 3, "b": 2}, seed=2)
    url = str(tmp_path / "partial.zarr")
    vids = [f"vid{i:04d}" for i in range(8)]
    encoders = {name: (a.shape[-1], {"fingerprint": name}) for name, a in feats.items()}
    st = FeatureStore.create(url, vids, encoders, shard_size=4, time_steps=16, grid=8)
    for shard, names in ((0, ["a", "b"]), (1, ["a"])):
        rows = st.shard_rows(shard)
        man = [{"row": r, "video_id": vids[r], "status": "ok", "label": r % 2} for r in rows]
        st.write_shard(shard, {n: feats[n][rows.start : rows.stop] for n in names}, man)
    messages: list[str] = []
    data = load_features(url, encoders=["a"], log=messages.append)
    assert data.rows.tolist() == list(range(8)) and not messages
    torch.testing.assert_close(data.features[0], torch.from_numpy(feats["a"].astype(np.float32)))
    both = load_features(url, log=messages.append)
    assert both.rows.tolist() == [0, 1, 2, 3] and any("skipping 4 row(s)" in m for m in messages)
    assert load_features(url, encoders=["b"], log=quiet).rows.tolist() == [0, 1, 2, 3]
