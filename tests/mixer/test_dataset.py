"""The cached-feature dataset over a real FeatureStore: labels, selection, pooling, split."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from mixer.dataset import load_features, pool_tokens, split_indices


def quiet(_: str) -> None:
    pass


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
