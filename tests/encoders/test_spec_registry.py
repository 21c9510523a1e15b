from __future__ import annotations

import dataclasses
import json

import pytest

from encoders import ENCODER_SETS, EncoderSpec, get_spec, list_specs, register, resolve_encoder_set


def test_default_specs_match_merv_reference() -> None:
    lb, dino, vivit, siglip, clip = (
        get_spec(n) for n in ("languagebind", "dinov2", "vivit", "siglip", "clip")
    )
    assert (lb.checkpoint, lb.frames, lb.layer, lb.final_norm, lb.prefix_tokens) == (
        "LanguageBind/LanguageBind_Video_merge",
        16,
        -2,
        False,
        1,
    )
    assert (lb.resize, lb.interpolation, lb.grid, lb.width) == (
        "short_side_center_crop",
        "bilinear",
        (16, 16),
        1024,
    )
    assert lb.mean == (0.48145466, 0.4578275, 0.40821073)
    assert lb.arch["num_frames"] == 8
    assert (dino.checkpoint, dino.layer, dino.final_norm, dino.prefix_tokens, dino.grid) == (
        "vit_large_patch14_reg4_dinov2.lvd142m",
        -2,
        False,
        5,
        (16, 16),
    )
    assert (dino.resize, dino.interpolation, dino.mean) == (
        "squash",
        "bicubic",
        (0.485, 0.456, 0.406),
    )
    assert (vivit.frames, vivit.layer, vivit.final_norm, vivit.prefix_tokens) == (32, -1, True, 1)
    assert (vivit.grid, vivit.width, vivit.interpolation, vivit.mean) == (
        (14, 14),
        768,
        "bilinear",
        (0.5, 0.5, 0.5),
    )
    assert (siglip.prefix_tokens, siglip.layer, siglip.grid, siglip.width) == (0, -2, (14, 14), 768)
    assert siglip.checkpoint.startswith("vit_base_patch16_siglip_224")
    assert (clip.checkpoint, clip.layer, clip.prefix_tokens, clip.interpolation) == (
        "openai/clip-vit-large-patch14",
        -2,
        1,
        "bicubic",
    )
    for spec in (lb, dino, vivit, siglip, clip):
        assert spec.time_steps == 16 and spec.image_size == 224 and not spec.tiny


# MERV's reference preprocessing, copied by hand (CLIP: the openai CLIP image processor).
IMAGENET = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
HALF = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
CLIP_STATS = ((0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
MERV_PREPROCESSING = {
    "dinov2": ("squash", "bicubic", IMAGENET),
    "siglip": ("squash", "bicubic", HALF),
    "vivit": ("squash", "bilinear", HALF),
    "languagebind": ("short_side_center_crop", "bilinear", CLIP_STATS),
    "clip": ("short_side_center_crop", "bicubic", CLIP_STATS),
}


@pytest.mark.parametrize("name", sorted(MERV_PREPROCESSING))
def test_default_preprocessing_matches_merv_table(name: str) -> None:
    # The preprocessing tests compare against references built from the spec's own values, so
    # the values themselves are pinned here.
    for spec in (get_spec(name), get_spec(f"{name}-tiny")):
        resize, interpolation, (mean, std) = MERV_PREPROCESSING[name]
        assert (spec.resize, spec.interpolation, spec.mean, spec.std) == (
            resize,
            interpolation,
            mean,
            std,
        )
        assert (spec.image_size, spec.frames) == (224, 32 if name == "vivit" else 16)
        assert spec.resize_impl == ("tensor" if name == "languagebind" else "pil")


def test_tiny_dinov2_layerscale_is_tiny_only() -> None:
    # Tiny DINOv2 starts its LayerScale at 1 (timm: 1e-5) so its blocks are not near-identities;
    # the full-size spec passes nothing: its checkpoint carries the trained LayerScale.
    assert get_spec("dinov2-tiny").arch["init_values"] == 1.0
    assert get_spec("dinov2").arch == {} and get_spec("siglip").arch == {}


def test_tiny_specs_mirror_full_size() -> None:
    widths = []
    for name in ENCODER_SETS["merv"] + ["clip"]:
        full, tiny = get_spec(name), get_spec(f"{name}-tiny")
        assert tiny.tiny
        same = (
            "backend",
            "checkpoint",
            "frames",
            "image_size",
            "resize",
            "interpolation",
            "resize_impl",
            "mean",
            "std",
            "layer",
            "final_norm",
            "prefix_tokens",
            "grid",
            "time_steps",
        )
        assert {f: getattr(tiny, f) for f in same} == {f: getattr(full, f) for f in same}
        assert tiny.width < 100
        widths.append(tiny.width)
    assert widths[:4] == [64, 64, 48, 48]


def test_resolve_encoder_set() -> None:
    assert resolve_encoder_set("merv") == ["languagebind", "dinov2", "vivit", "siglip"]
    assert resolve_encoder_set("tiny") == ENCODER_SETS["tiny"]
    assert resolve_encoder_set(" siglip , clip ") == ["siglip", "clip"]
    with pytest.raises(ValueError, match="known encoders: .*dinov2"):
        resolve_encoder_set("dinov2,nope")
    with pytest.raises(ValueError):
        resolve_encoder_set("")
    with pytest.raises(ValueError, match="unknown encoder"):
        get_spec("nope")
    assert {s.name for s in list_specs()} >= set(ENCODER_SETS["merv"] + ENCODER_SETS["tiny"])


def test_register_refuses_silent_redefinition() -> None:
    spec = get_spec("siglip-tiny")
    register(spec)  # identical: fine
    with pytest.raises(ValueError, match="already registered"):
        register(spec.replace(layer=-1))


def test_fingerprint_changes_with_every_field() -> None:
    base = get_spec("dinov2")
    changed = {
        "name": "x",
        "backend": "hf_clip",
        "checkpoint": "y",
        "width": 3,
        "grid": (2, 2),
        "prefix_tokens": 0,
        "revision": "abc",
        "frames": 32,
        "time_steps": 8,
        "image_size": 256,
        "resize": "short_side_center_crop",
        "interpolation": "bilinear",
        "resize_impl": "tensor",
        "mean": (0.1, 0.2, 0.3),
        "std": (0.3, 0.2, 0.1),
        "layer": -1,
        "final_norm": True,
        "arch": {"depth": 3},
        "tiny": True,
    }
    assert set(changed) == {f.name for f in dataclasses.fields(EncoderSpec)}
    prints = {base.fingerprint()}
    for field, value in changed.items():
        prints.add(base.replace(**{field: value}).fingerprint())
    assert len(prints) == len(changed) + 1


def test_to_dict_round_trip_and_json() -> None:
    for spec in list_specs():
        data = json.loads(json.dumps(spec.to_dict()))
        again = EncoderSpec.from_dict(data)
        assert again == spec and again.fingerprint() == spec.fingerprint()
        assert hash(again) == hash(spec)


def test_invalid_spec_rejected() -> None:
    with pytest.raises(ValueError, match="frames"):
        get_spec("dinov2").replace(frames=12)
    with pytest.raises(ValueError, match="resize"):
        get_spec("dinov2").replace(resize="letterbox")


def test_backends_are_the_decorated_backbone_classes() -> None:
    from encoders.backbones import BACKENDS, backbone_class
    from encoders.backbones._base import Backbone

    assert BACKENDS == ("hf_auto", "hf_clip", "hf_vivit", "languagebind", "timm")
    for name in BACKENDS:
        cls = backbone_class(name)
        assert issubclass(cls, Backbone) and cls.__module__ == f"encoders.backbones.{name}"
    assert {s.backend for s in list_specs()} <= set(BACKENDS)
    with pytest.raises(ValueError, match="unknown backend 'nope'; known backends: hf_auto, "):
        backbone_class("nope")


def test_backbone_decorator_refuses_a_name_that_is_not_its_file() -> None:
    from encoders.backbones import register_backbone

    with pytest.raises(ValueError, match="must be defined in encoders.backbones.timm"):

        @register_backbone("timm")
        class Elsewhere:  # defined in this test module, not in encoders/backbones/timm.py
            pass


def test_spec_backend_is_checked_against_the_registry() -> None:
    with pytest.raises(ValueError, match=r"backend 'nope' not in \('hf_auto', 'hf_clip'"):
        get_spec("dinov2").replace(backend="nope")


def test_from_dict_refuses_unknown_fields_naming_the_known_ones() -> None:
    data = get_spec("dinov2").to_dict()
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['layr'\]; known fields: .*'layer'"):
        EncoderSpec.from_dict({**data, "layr": -2})
    # JSON-ish values are coerced to the fields' types: the same spec, the same fingerprint
    again = EncoderSpec.from_dict({**data, "grid": [16.0, 16], "frames": "16"})
    assert again == get_spec("dinov2") and again.fingerprint() == get_spec("dinov2").fingerprint()
