"""Checkpoints: safetensors weights with the model spec in the metadata, exact round trip."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from mixer import MervMixer, ModelSpec, load_model, save_model
from mixer.checkpoint import read_spec
from pipeline.config import ConfigError


def _model() -> MervMixer:
    spec = ModelSpec(
        encoders=["a", "b"],
        widths=[3, 5],
        time_steps=2,
        tokens_per_step=4,
        num_classes=3,
        d_model=6,
        fusion_options={"attn_dim": 8},
        classes=["x", "y", "z"],
    )
    torch.manual_seed(0)
    model = MervMixer(spec)
    with torch.no_grad():  # biases start at zero in the mixer: make every value distinctive
        for p in model.parameters():
            p.add_(torch.randn(p.shape))
    return model


def test_checkpoint_keys_values_and_spec_round_trip(tmp_path):
    model = _model()
    path = save_model(model, tmp_path / "run" / "model.safetensors", extra={"note": "hi"})
    tensors = load_file(str(path))
    # Reference names for projectors and mixer (see mixer.projectors / mixer.fusions), ours for
    # the head; nothing else is stored.
    assert {k: tuple(v.shape) for k, v in tensors.items()} == {
        "projectors.0.projector.weight": (6, 3),
        "projectors.0.projector.bias": (6,),
        "projectors.1.projector.weight": (6, 5),
        "projectors.1.projector.bias": (6,),
        "feature_fusion.query": (1, 8),
        "feature_fusion.q_proj.weight": (8, 8),
        "feature_fusion.q_proj.bias": (8,),
        "feature_fusion.k_proj.weight": (8, 6),
        "feature_fusion.k_proj.bias": (8,),
        "head.reduce.weight": (4, 6),
        "head.reduce.bias": (4,),
        "head.classifier.weight": (3, 8 * 4),
        "head.classifier.bias": (3,),
    }
    sd = model.state_dict()
    for k, v in tensors.items():
        assert v.dtype == torch.float32 and torch.equal(v, sd[k]), k
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "merv-pipeline/mixer/v1" and meta["note"] == "hi"
    assert json.loads(meta["model_spec"])["classes"] == ["x", "y", "z"]
    assert read_spec(path) == model.spec

    loaded = load_model(tmp_path / "run")  # the directory works as well as the file
    assert loaded.spec == model.spec
    x = [torch.randn(2, 2, 4, w) for w in model.spec.widths]
    model.eval()
    loaded.eval()
    with torch.no_grad():
        (a, wa), (b, wb) = model(x), loaded(x)
    assert torch.equal(a, b) and torch.equal(wa, wb)


def test_foreign_safetensors_file_is_refused(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="not a mixer checkpoint"):
        load_model(path)


def test_spec_with_an_unknown_field_names_it_and_the_file(tmp_path):
    spec = dict(_model().spec.to_dict(), heads=4)
    path = tmp_path / "model.safetensors"
    metadata = {"format": "merv-pipeline/mixer/v1", "model_spec": json.dumps(spec)}
    save_file({"w": torch.zeros(2)}, str(path), metadata=metadata)
    with pytest.raises(ConfigError, match=r"model.safetensors model_spec: unknown.*'heads'"):
        read_spec(path)
