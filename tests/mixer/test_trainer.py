"""End-to-end training on synthetic features written into a real FeatureStore."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from mixer import TrainConfig, TrainResult, load_model, train
from mixer.dataset import load_features
from mixer.trainer import warmup_cosine


def quiet(_: str) -> None:
    pass


def test_fits_separable_problem_and_round_trips_checkpoint(store_factory, synth, tmp_path):
    feats, y = synth.separable(64, {"noise": 12, "signal": 20}, informative="signal")
    url, _ = store_factory(feats, [f"class{c}" for c in y], shard_size=16)
    out = tmp_path / "run"
    lines: list[str] = []
    cfg = TrainConfig(
        store=url,
        d_model=32,
        pool_grid=2,
        epochs=8,
        batch_size=16,
        lr=3e-3,
        fusion_options={"attn_dim": 64},
        val_fraction=0.25,
        seed=1,
        out=str(out),
    )
    res = train(cfg, log=lines.append)

    assert isinstance(res, TrainResult) and res.n_train == 48 and res.n_val == 16
    assert res.train_acc[-1] >= 0.95 and res.val_acc[-1] >= 0.9
    assert res.train_loss[-1] < res.train_loss[0]
    assert sum(1 for m in lines if m.startswith("epoch ")) == 8
    assert set(res.mixer_weights) == {"noise", "signal"}
    assert res.mixer_weights["signal"] > res.mixer_weights["noise"]  # the mixer finds the signal
    assert abs(sum(res.mixer_weights.values()) - 1) < 1e-5
    assert res.param_counts["total"] == sum(v for k, v in res.param_counts.items() if k != "total")

    # Outputs: safetensors weights, the config and the results.
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors",
        "train_config.yaml",
        "results.json",
    }
    assert TrainConfig.from_dict(yaml.safe_load((out / "train_config.yaml").read_text())) == cfg
    assert json.loads((out / "results.json").read_text())["val_acc"] == res.val_acc
    model = load_model(out)
    tensors = load_file(str(out / "model.safetensors"))
    assert set(tensors) == set(model.state_dict())
    assert model.spec.classes == ["class0", "class1"] and model.spec.encoders == ["noise", "signal"]
    data = load_features(url, pool_grid=2, log=quiet)
    model.eval()
    with torch.no_grad():
        logits, _ = model(data.features)
    acc = float((logits.argmax(-1) == data.targets).float().mean())
    assert acc >= 0.9


def test_label_that_depends_on_temporal_order_is_learnable(store_factory, synth):
    x, y = synth.moving_blob(48)
    # The test is only meaningful if a time-mean cannot separate the classes.
    mean_over_time = x.astype(np.float32).mean(axis=1)
    assert abs(mean_over_time[y == 0].mean() - mean_over_time[y == 1].mean()) < 0.05
    url, _ = store_factory({"only": x}, y.tolist(), shard_size=16)
    cfg = TrainConfig(
        store=url,
        d_model=16,
        pool_grid=4,
        epochs=15,
        batch_size=8,
        lr=3e-3,
        fusion_options={"attn_dim": 32},
        val_fraction=0.25,
        seed=0,
    )
    res = train(cfg, log=quiet)
    assert res.train_acc[-1] >= 0.95 and res.val_acc[-1] >= 0.9
    assert res.mixer_weights == {"only": pytest.approx(1.0)}


def test_default_mixer_width_and_other_fusion_train(store_factory, synth):
    """Default attn_dim (3072) trains too, and the registry-selected fusions work end to end."""
    feats, y = synth.separable(24, {"a": 8, "b": 8}, informative="a", margin=2.0)
    url, _ = store_factory(feats, y.tolist(), shard_size=12)
    res = train(
        TrainConfig(store=url, d_model=16, pool_grid=1, epochs=3, batch_size=8, val_fraction=0.0),
        log=quiet,
    )
    assert res.val_acc == [None, None, None] and res.n_val == 0
    assert abs(sum(res.mixer_weights.values()) - 1) < 1e-5
    assert res.param_counts["fusion"] == 3072 * 3072 + 3072 + 16 * 3072 + 3072 + 3072  # q, k, Q
    for fusion in ("channel_concat", "static_weights"):
        res = train(
            TrainConfig(
                store=url,
                fusion=fusion,
                projector="mlp",
                d_model=16,
                pool_grid=1,
                epochs=2,
                batch_size=8,
                precision="bf16",
            ),
            log=quiet,
        )
        assert len(res.train_loss) == 2 and np.isfinite(res.train_loss).all()
        assert (fusion == "channel_concat") == (res.mixer_weights == {})


def test_config_from_dict_overrides_and_rejects_unknown_keys():
    cfg = TrainConfig.from_dict(
        {"store": "s.zarr", "encoders": ("a", "b"), "betas": [0.9, 0.95]}, epochs=3
    )
    assert cfg.epochs == 3 and cfg.encoders == ["a", "b"] and cfg.betas == (0.9, 0.95)
    assert TrainConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown TrainConfig field.*'epoch'"):
        TrainConfig.from_dict({"store": "s.zarr", "epoch": 3})
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(store="s.zarr", val_fraction=1.0)


def test_warmup_then_cosine_schedule():
    f = warmup_cosine(total_steps=100, warmup_fraction=0.1)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))
