"""`merv explain`: per-video mixer weights that sum to 1 and equal a direct forward of the
mixer; the videos each encoder is trusted most on; fusions without weights refused."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from jobs.cli import main
from mixer import TrainConfig, load_model, train
from mixer.inmemory import load_features
from tests.helpers import quiet
from tests.mixer.conftest import separable, write_store


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain")
    feats, y = separable(40, {"a": 6, "b": 4, "c": 4}, informative="a", margin=2.0)
    store = str(root / "store.zarr")
    write_store(store, feats, [f"c{v}" for v in y], shard_size=16)
    runs = {}
    for fusion in ("cross_attention", "channel_concat"):
        runs[fusion] = str(root / fusion)
        cfg = TrainConfig(store=store, fusion=fusion, d_model=8, epochs=4, batch_size=8,
                          pool_grid=2, fusion_options={}, loader_workers=0, out=runs[fusion])  # fmt: skip
        train(cfg, log=quiet)
    return store, runs


def test_weights_sum_to_one_and_equal_a_direct_forward(trained, tmp_path, capsys):
    store, runs = trained
    with pytest.raises(SystemExit) as stop:
        main(
            [
                "explain",
                store,
                "--checkpoint",
                runs["cross_attention"],
                "--out",
                str(tmp_path),
                "--all",
            ]
        )
    assert stop.value.code == 0
    printed = capsys.readouterr().out
    table = pq.read_table(tmp_path / "mixer_weights.parquet").to_pydict()
    w = np.stack([table[f"w_{e}"] for e in ("a", "b", "c")], axis=1)
    assert w.shape == (40, 3)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    data = load_features(store, pool_grid=2, log=quiet)
    model = load_model(runs["cross_attention"]).eval()
    with torch.no_grad():
        _, direct = model.fuse(data.features)
    order = [data.video_ids.index(v) for v in table["video_id"]]
    np.testing.assert_allclose(w, direct.numpy()[order], rtol=1e-5, atol=1e-6)
    assert set(table["label"]) == {"c0", "c1"}
    top_a = table["video_id"][int(np.argmax(w[:, 0]))]
    assert f"a trusted most: {top_a} " in printed and "mean weight by label" in printed
    assert (tmp_path / "mixer_weights_by_label.png").stat().st_size > 0


def test_a_fusion_without_weights_is_refused(trained, capsys):
    store, runs = trained
    with pytest.raises(SystemExit) as stop:
        main(["explain", store, "--checkpoint", runs["channel_concat"]])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert "fusion 'channel_concat' has no per-encoder weights to explain" in err
