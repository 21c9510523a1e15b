"""The shared-read fast path: runs trained side by side over one read of the store give what
each gives alone, bitwise on CPU, dropout included; runs that read differently never share."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from mixer import TrainConfig, train
from mixer.metrics import read_metrics
from mixer.side_by_side import shared_read_groups, train_side_by_side
from tests.mixer.conftest import separable, write_store

ALL = ["a", "b", "c"]
VARIANTS = [  # different encoders, fusions, lr, dropout (each run's own RNG stream)
    dict(encoders=ALL, fusion="cross_attention", lr=0.01, objective_options={"dropout": 0.3}),
    dict(
        encoders=["a", "b"], fusion="channel_concat", lr=0.003, objective_options={"dropout": 0.3}
    ),  # fmt: skip
    dict(encoders=["c"], fusion="cross_attention", lr=0.01),
    dict(encoders=["c", "a"], fusion="static_weights", lr=0.01, d_model=16),
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    feats, y = separable(40, {"a": 6, "b": 4, "c": 5}, informative="a", margin=2.0)
    url = str(tmp_path_factory.mktemp("side") / "store.zarr")
    write_store(url, feats, [f"c{v}" for v in y], failed=[7], shard_size=16)
    return url


def configs(store, out, **common) -> list[TrainConfig]:
    base = dict(store=store, row_encoders=ALL, epochs=3, batch_size=8, pool_grid=2, d_model=8,
                loader_workers=0, shuffle_rows=16, val_fraction=0.25, seed=1, progress=False)  # fmt: skip
    return [
        TrainConfig(**{**base, **v, **common, "out": str(out / f"v{i}")})
        for i, v in enumerate(VARIANTS)
    ]


def test_side_by_side_equals_each_run_alone(store, tmp_path):
    alone = [train(c, log=lambda *_: None) for c in configs(store, tmp_path / "alone")]
    shared = train_side_by_side(configs(store, tmp_path / "shared"))
    for i, (a, s) in enumerate(zip(alone, shared, strict=True)):
        assert s.shared_read == 4 and a.shared_read == 1
        assert s.train_loss == a.train_loss and s.train_acc == a.train_acc, i
        assert s.val_acc == a.val_acc and s.mixer_weights == a.mixer_weights, i
        assert (s.n_train, s.n_val, s.encoders) == (a.n_train, a.n_val, a.encoders)
        wa = load_file(tmp_path / "alone" / f"v{i}" / "model.safetensors")
        ws = load_file(tmp_path / "shared" / f"v{i}" / "model.safetensors")
        assert wa.keys() == ws.keys() and all((wa[k] == ws[k]).all() for k in wa), i
        la = [r["loss"] for r in read_metrics(tmp_path / "alone" / f"v{i}" / "metrics.jsonl")]
        ls = [r["loss"] for r in read_metrics(tmp_path / "shared" / f"v{i}" / "metrics.jsonl")]
        assert la == ls and len(la) == 3 * 4, i  # 3 epochs of 4 batches (30 train rows)
        saved = json.loads((tmp_path / "shared" / f"v{i}" / "results.json").read_text())
        assert saved["shared_read"] == 4 and saved["out"] == str(tmp_path / "shared" / f"v{i}")
    assert len({tuple(a.train_loss) for a in alone}) == 4  # the variants really differ


def test_only_runs_that_read_alike_share(store, tmp_path):
    seeds = configs(store, tmp_path) + configs(store, tmp_path, seed=2)
    assert shared_read_groups(seeds) == [[0, 1, 2, 3], [4, 5, 6, 7]]
    pooled = configs(store, tmp_path) + configs(store, tmp_path, pool_grid=4)[:1]
    assert shared_read_groups(pooled) == [[0, 1, 2, 3], [4]]
    lm = configs(store, tmp_path)[:2] + [configs(store, tmp_path)[0].replace(objective="lm")]
    assert shared_read_groups(lm) == [[0, 1], [2]]
    with pytest.raises(ValueError, match="must share seed"):
        train_side_by_side([seeds[0], seeds[4]])
