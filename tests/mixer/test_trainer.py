"""End-to-end training on synthetic features written into a real FeatureStore."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import yaml
from safetensors.torch import load_file

from mixer import MervMixer, ModelSpec, TrainConfig, TrainResult, load_model, train
from mixer.inmemory import FeatureData, load_features
from mixer.trainer import param_groups, warmup_cosine
from pipeline.config import ConfigError
from tests.helpers import quiet


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

    # Outputs: safetensors weights, the config, the results, per-step metrics, the curves and
    # the checkpoint of the last step (resumable).
    assert {p.name for p in out.iterdir()} == {
        "model.safetensors",
        "train_config.yaml",
        "results.json",
        "metrics.jsonl",
        "curves.png",
        "checkpoints",
    }
    assert [p.name for p in (out / "checkpoints").iterdir()] == ["step-000000024"]  # 8 x 3
    steps = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in steps] == list(range(1, 25))
    assert {m["epoch"] for m in steps} == set(range(1, 9))
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
    with pytest.raises(ConfigError, match=r"TrainConfig: unknown field.*'epoch'.*known.*'epochs'"):
        TrainConfig.from_dict({"store": "s.zarr", "epoch": 3})
    # Values as flags and YAML give them are coerced to the field types.
    flags = TrainConfig.from_dict(
        {"store": "s.zarr", "encoders": "a,b", "betas": "0.8,0.9", "epochs": "2", "lr": "1e-3"}
    )
    assert flags.encoders == ["a", "b"] and flags.betas == (0.8, 0.9)
    assert flags.epochs == 2 and flags.lr == 1e-3
    with pytest.raises(ConfigError, match="field 'betas'"):
        TrainConfig.from_dict({"store": "s.zarr", "betas": [0.9]})
    with pytest.raises(ValueError, match="val_fraction"):
        TrainConfig(store="s.zarr", val_fraction=1.0)


def test_model_spec_takes_the_data_and_every_model_field_of_the_config():
    data = FeatureData(
        features=[],
        targets=torch.zeros(0, dtype=torch.long),
        video_ids=[],
        rows=np.arange(0),
        encoders=["b", "a"],
        widths=[5, 3],
        time_steps=4,
        grid=2,
        classes=["x", "y", "z"],
    )
    cfg = TrainConfig(
        store="s.zarr",
        encoders=["b", "a"],
        projector="mlp",
        fusion="static_weights",
        objective="probe",
        projector_options={"p": 1},
        fusion_options={"f": 2},
        objective_options={"o": 3},
        d_model=12,
    )
    spec = ModelSpec.from_train_config(cfg, data)
    assert spec == ModelSpec(
        encoders=["b", "a"],
        widths=[5, 3],
        time_steps=4,
        tokens_per_step=4,
        num_classes=3,
        d_model=12,
        projector="mlp",
        fusion="static_weights",
        objective="probe",
        projector_options={"p": 1},
        fusion_options={"f": 2},
        objective_options={"o": 3},
        classes=["x", "y", "z"],
    )
    assert spec.fusion_options is not cfg.fusion_options  # the spec keeps its own options


def test_cli_train_config_is_the_file_then_the_flags(tmp_path):
    from jobs.cli import build_parser
    from jobs.train_cmd import train_config as _train_config

    path = tmp_path / "job.yaml"
    path.write_text("train:\n  store: s.zarr\n  epochs: 2\n  betas: [0.8, 0.9]\n  lr: 1e-2\n")
    args = build_parser().parse_args(
        ["train", "--config", str(path), "--epochs", "5", "--encoders", "b,a"]
    )
    cfg = _train_config(args)
    assert cfg == TrainConfig(
        store="s.zarr", epochs=5, betas=(0.8, 0.9), lr=0.01, encoders=["b", "a"]
    )
    path.write_text("train:\n  store: s.zarr\n  epoch: 2\n")
    with pytest.raises(ConfigError, match=r"job.yaml \[train\]: unknown field.*'epoch'.*'epochs'"):
        _train_config(build_parser().parse_args(["train", "--config", str(path)]))
    with pytest.raises(
        ConfigError,
        match=r"flags \[train\]: d_model, epochs, batch_size and micro_batch_size must be positive",
    ):
        _train_config(build_parser().parse_args(["train", "s.zarr", "--epochs", "0"]))


def test_warmup_then_cosine_schedule():
    f = warmup_cosine(total_steps=100, warmup_fraction=0.1)
    assert f(0) == 0.0 and f(5) == pytest.approx(0.5) and f(10) == pytest.approx(1.0)
    assert f(55) == pytest.approx(0.5) and f(100) == pytest.approx(0.0)
    assert all(f(s) >= f(s + 1) for s in range(10, 100))


# --- the recipe, checked piece by piece ---------------------------------------------------------


@pytest.mark.parametrize(
    ("total", "fraction", "expect"),
    [
        # warmup = int(10 * 0.3) = 3 steps: 0, 1/3, 2/3, then cosine over the 7 steps left
        (
            10,
            0.3,
            {
                0: 0.0,
                1: 1 / 3,
                2: 2 / 3,
                3: 1.0,
                # progress (s - 3) / 7; 0.5 * (1 + cos(pi * progress))
                5: 0.5 * (1 + math.cos(math.pi * 2 / 7)),
                8: 0.5 * (1 + math.cos(math.pi * 5 / 7)),
                10: 0.0,
            },
        ),
        # warmup = int(11 * 0.1) = 1; cosine midpoint at progress 5/10 -> step 6
        (11, 0.1, {0: 0.0, 1: 1.0, 6: 0.5, 11: 0.0, 12: 0.0, 20: 0.0}),
        # no warmup: starts at the full rate
        (4, 0.0, {0: 1.0, 2: 0.5, 4: 0.0}),
    ],
)
def test_warmup_cosine_exact_values(total, fraction, expect):
    f = warmup_cosine(total, fraction)
    for step, value in expect.items():
        assert f(step) == pytest.approx(value, abs=1e-12), step


def test_param_groups_decay_only_matrices():
    """AdamW groups: weight decay on >= 2-D weights; none on biases or any 1-D parameter."""
    s = ModelSpec(
        encoders=["a", "b"],
        widths=[3, 5],
        time_steps=2,
        tokens_per_step=1,
        num_classes=2,
        d_model=4,
        projector="mlp",
        fusion="static_weights",  # `scalar` is 1-D and not a bias
    )
    model = MervMixer(s)
    name_of = {id(p): n for n, p in model.named_parameters()}
    decay, no_decay = param_groups(model, weight_decay=0.05)
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert {name_of[id(p)] for p in decay["params"]} == {
        "projectors.0.projector.0.weight",
        "projectors.0.projector.2.weight",
        "projectors.1.projector.0.weight",
        "projectors.1.projector.2.weight",
        "head.reduce.weight",
        "head.classifier.weight",
    }
    assert {name_of[id(p)] for p in no_decay["params"]} == {
        "projectors.0.projector.0.bias",
        "projectors.0.projector.2.bias",
        "projectors.1.projector.0.bias",
        "projectors.1.projector.2.bias",
        "feature_fusion.scalar",
        "head.reduce.bias",
        "head.classifier.bias",
    }
    # The cross-attentive mixer: the learned query [1, A] is a matrix, its biases are not.
    cross = MervMixer(
        ModelSpec(**{**s.to_dict(), "fusion": "cross_attention", "fusion_options": {"attn_dim": 8}})
    )
    name_of = {id(p): n for n, p in cross.named_parameters()}
    decay, no_decay = param_groups(cross, weight_decay=0.1)
    fusion_decay = {name_of[id(p)] for p in decay["params"] if "fusion" in name_of[id(p)]}
    fusion_none = {name_of[id(p)] for p in no_decay["params"] if "fusion" in name_of[id(p)]}
    assert fusion_decay == {
        "feature_fusion.query",
        "feature_fusion.q_proj.weight",
        "feature_fusion.k_proj.weight",
    }
    assert fusion_none == {"feature_fusion.q_proj.bias", "feature_fusion.k_proj.bias"}


class RecordingAdamW(torch.optim.AdamW):
    """The real AdamW; also records its groups and, at every step, the lr and gradient norm."""

    instances: list[RecordingAdamW] = []

    def __init__(self, params, **kw):
        super().__init__(params, **kw)
        self.groups_at_start = [
            {
                "shapes": [tuple(p.shape) for p in g["params"]],
                "weight_decay": g["weight_decay"],
                "betas": g["betas"],
            }
            for g in self.param_groups
        ]
        self.steps: list[tuple[list[float], float]] = []
        RecordingAdamW.instances.append(self)

    def step(self, closure=None):
        grads = [p.grad for g in self.param_groups for p in g["params"] if p.grad is not None]
        norm = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in grads])))
        self.steps.append(([g["lr"] for g in self.param_groups], norm))
        return super().step(closure)


def test_training_uses_groups_warmup_cosine_and_clipping(store_factory, synth, monkeypatch):
    feats, y = synth.separable(24, {"a": 6, "b": 4}, informative="a")
    url, _ = store_factory(feats, y.tolist(), shard_size=12)
    monkeypatch.setattr(RecordingAdamW, "instances", [])
    monkeypatch.setattr(torch.optim, "AdamW", RecordingAdamW)
    cfg = TrainConfig(
        store=url,
        d_model=8,
        pool_grid=1,
        epochs=3,
        batch_size=8,
        lr=0.01,
        weight_decay=0.05,
        betas=(0.8, 0.9),
        warmup=0.34,
        grad_clip=1e-3,  # far below the raw gradient norm, so every step is clipped
        val_fraction=0.25,
        fusion_options={"attn_dim": 8},
        device="cpu",
    )
    res = train(cfg, log=quiet)
    (opt,) = RecordingAdamW.instances
    # Groups: two linear projectors, cross-attention (query, q_proj, k_proj), probe head.
    decay, no_decay = opt.groups_at_start
    assert decay["weight_decay"] == 0.05 and no_decay["weight_decay"] == 0.0
    assert len(decay["shapes"]) == 7 and all(len(s) == 2 for s in decay["shapes"])
    assert len(no_decay["shapes"]) == 6 and all(len(s) == 1 for s in no_decay["shapes"])
    assert decay["betas"] == (0.8, 0.9)
    # 18 training rows (3 of 12 per class to val), batches of 8: ceil(18/8) = 3 steps per epoch,
    # 9 steps in all; warmup int(9 * 0.34) = 3 steps, then cosine over the 6 left.
    assert res.n_train == 18
    expect = [0.0, 1 / 3, 2 / 3] + [0.5 * (1 + math.cos(math.pi * k / 6)) for k in range(6)]
    lrs = [lr for lr, _ in opt.steps]
    assert len(lrs) == 9
    for step, (got, factor) in enumerate(zip(lrs, expect, strict=True)):
        assert got == pytest.approx([0.01 * factor] * 2, abs=1e-12), step
    # Clipping happens before the step: the gradient the optimizer sees has norm grad_clip.
    norms = [n for _, n in opt.steps]
    assert all(n == pytest.approx(1e-3, rel=1e-3) for n in norms), norms


def test_same_seed_same_weights(store_factory, synth, tmp_path):
    feats, y = synth.separable(24, {"a": 6, "b": 4}, informative="a")
    url, _ = store_factory(feats, y.tolist(), shard_size=12)

    def run(seed: int, name: str) -> tuple[TrainResult, dict[str, torch.Tensor]]:
        cfg = TrainConfig(
            store=url,
            d_model=8,
            pool_grid=2,
            epochs=2,
            batch_size=4,
            fusion_options={"attn_dim": 8},
            seed=seed,
            out=str(tmp_path / name),
            device="cpu",
        )
        res = train(cfg, log=quiet)
        return res, load_file(str(tmp_path / name / "model.safetensors"))

    res1, w1 = run(3, "first")
    torch.manual_seed(12345)  # whatever the global RNG holds, the seed decides
    res2, w2 = run(3, "second")
    _, w3 = run(4, "other")
    assert set(w1) == set(w2) == set(w3)
    for k in w1:
        assert torch.equal(w1[k], w2[k]), k
    assert res1.train_loss == res2.train_loss and res1.mixer_weights == res2.mixer_weights
    assert any(not torch.equal(w1[k], w3[k]) for k in w1)


def test_progress_bar_on_a_terminal_only(store_factory, synth, monkeypatch):
    import io
    import sys

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    feats, y = synth.separable(24, {"a": 6, "b": 4}, informative="a")
    url, _ = store_factory(feats, y.tolist(), shard_size=12)
    cfg = TrainConfig(store=url, d_model=8, pool_grid=1, epochs=1, batch_size=4, val_fraction=0)
    for stream, shown in ((Terminal(), True), (io.StringIO(), False)):
        monkeypatch.setattr(sys, "stderr", stream)
        train(cfg.replace(fusion_options={"attn_dim": 8}), log=quiet)
        text = stream.getvalue()
        assert (
            "epoch 1: 100%" in text and "step/s, loss=" in text and "videos_s=" in text
        ) == shown


def test_micro_batches_take_the_steps_of_whole_batches(store_factory, synth, tmp_path):
    """Gradient accumulation over micro-batches (a last one shorter) changes memory, not steps."""
    feats, y = synth.separable(40, {"a": 6, "b": 4}, informative="a")
    url, _ = store_factory(feats, y.tolist(), shard_size=16)
    base = TrainConfig(store=url, d_model=8, pool_grid=1, epochs=2, batch_size=8, seed=1,
                       fusion_options={"attn_dim": 8}, val_fraction=0.25)  # fmt: skip
    runs = []
    for micro in (None, 3):
        out = tmp_path / f"micro{micro}"
        train(base.replace(micro_batch_size=micro, out=str(out)), log=quiet)
        runs.append([json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()])
    assert len(runs[0]) == len(runs[1]) == 8
    for whole, micro in zip(*runs, strict=True):
        assert micro["loss"] == pytest.approx(whole["loss"], rel=1e-5)
        assert micro["grad_norm"] == pytest.approx(whole["grad_norm"], rel=1e-4)


def test_the_objective_recipe_fills_what_is_left_unset():
    probe = TrainConfig(store="s.zarr").with_recipe()
    assert (probe.epochs, probe.batch_size, probe.micro_batch_size) == (10, 32, None)
    lm = TrainConfig(store="s.zarr", objective="lm", epochs=2).with_recipe()
    assert (lm.epochs, lm.batch_size, lm.micro_batch_size) == (2, 256, 16)  # MERV's align
    assert (lm.lr, lm.warmup, lm.grad_clip, lm.weight_decay) == (1e-3, 0.03, 1.0, 0.0)
