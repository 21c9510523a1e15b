"""Real tiny random encoders (never mocked): shapes, kept layer vs library outputs, determinism."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import timm
import torch

from encoders import ENCODER_SETS, FrozenEncoder, build_encoder, get_spec

TINY = ENCODER_SETS["tiny"] + ["clip-tiny"]


@pytest.fixture(scope="module")
def tiny_encoders() -> dict[str, FrozenEncoder]:
    return {name: build_encoder(name) for name in TINY}


@pytest.fixture(scope="module")
def pixels(tiny_encoders, videos) -> dict[str, torch.Tensor]:
    return {name: enc.preprocess(videos) for name, enc in tiny_encoders.items()}


@pytest.mark.parametrize("name", TINY)
def test_encode_shape_and_finite(name: str, tiny_encoders, videos) -> None:
    enc = tiny_encoders[name]
    out = enc.encode(videos)
    assert out.shape == (2, *enc.spec.output_shape)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out[0].std() > 0 and not torch.allclose(out[0], out[1])
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


@pytest.mark.parametrize("name", ["dinov2-tiny", "siglip-tiny"])
def test_timm_kept_layer_matches_library(name: str, tiny_encoders, pixels) -> None:
    enc, spec = tiny_encoders[name], get_spec(name)
    ref = timm.create_model(spec.checkpoint, pretrained=False, img_size=224, num_classes=0,
                            **spec.arch).eval()
    # Our model is pruned after the kept block; the rest is irrelevant to that block's output.
    missing = ref.load_state_dict(enc.backbone.model.state_dict(), strict=False).missing_keys
    assert all(k.startswith(("blocks.1.", "norm.", "attn_pool.")) for k in missing)
    x = pixels[name].flatten(0, 1)
    with torch.inference_mode():
        ours = enc(pixels[name])
        # MERV's own call: get_intermediate_layers on the penultimate block, prefix dropped.
        (lib,) = ref.get_intermediate_layers(x, n={len(ref.blocks) - 2}, norm=False)
        # All tokens of the kept block, by hand: prefix tokens come first, then the patch grid.
        tokens = ref.norm_pre(ref._pos_embed(ref.patch_embed(x)))
        for blk in ref.blocks[: len(ref.blocks) - 1]:
            tokens = blk(tokens)
        full = ref.forward_features(x)  # sanity: kept layer is not the final (normed) output
    hg, wg = spec.grid
    assert tokens.shape[1] == spec.prefix_tokens + hg * wg
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(tokens[:, spec.prefix_tokens :], lib, atol=1e-5, rtol=1e-5)
    assert not torch.allclose(full[:, spec.prefix_tokens:], lib, atol=1e-3)


def test_vivit_kept_layer_matches_library(tiny_encoders, pixels) -> None:
    from transformers import VivitConfig, VivitModel

    enc, spec = tiny_encoders["vivit-tiny"], get_spec("vivit-tiny")
    ref = VivitModel(VivitConfig(**spec.arch), add_pooling_layer=False).eval()
    ref.load_state_dict(enc.backbone.model.state_dict(), strict=True)
    with torch.inference_mode():
        out = ref(pixel_values=pixels["vivit-tiny"], output_hidden_states=True)
        ours = enc(pixels["vivit-tiny"])
    lib = out.last_hidden_state  # after the final LayerNorm, as MERV uses it
    assert lib.shape[1] == 1 + 16 * 14 * 14
    torch.testing.assert_close(ours.reshape(2, -1, spec.width), lib[:, 1:], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(ours.reshape(2, -1, spec.width), out.hidden_states[-1][:, 1:])


def test_clip_kept_layer_matches_library(tiny_encoders, pixels) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    enc, spec = tiny_encoders["clip-tiny"], get_spec("clip-tiny")
    ref = CLIPVisionModel(CLIPVisionConfig(**spec.arch)).eval()
    missing = ref.load_state_dict(enc.backbone.model.state_dict(), strict=False).missing_keys
    assert all(".layers.1." in k for k in missing)
    with torch.inference_mode():
        out = ref(pixel_values=pixels["clip-tiny"].flatten(0, 1), output_hidden_states=True)
        ours = enc(pixels["clip-tiny"])
    lib = out.hidden_states[-2]  # penultimate, no post-layernorm, as MERV/LLaVA use it
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib[:, 1:], atol=1e-5,
                               rtol=1e-5)


def test_languagebind_runs_two_independent_8_frame_clips(tiny_encoders, pixels) -> None:
    enc = tiny_encoders["languagebind-tiny"]
    x = pixels["languagebind-tiny"][:1]
    with torch.inference_mode():
        base = enc(x)
        perturbed = x.clone()
        perturbed[:, 8:] = torch.randn_like(perturbed[:, 8:])
        out = enc(perturbed)
        halves = torch.cat([enc.backbone(x[:, :8]), enc.backbone(x[:, 8:])], dim=1)
        swapped = x.clone()
        swapped[:, 3], swapped[:, 4] = x[:, 4], x[:, 3]
        out_swapped = enc(swapped)
    torch.testing.assert_close(out[:, :8], base[:, :8], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(out[:, 8:], base[:, 8:], atol=1e-3)
    torch.testing.assert_close(halves, base, atol=1e-5, rtol=1e-5)
    # Temporal attention mixes frames within a clip, and the temporal embedding makes order matter.
    assert not torch.allclose(out_swapped[:, 3], base[:, 4], atol=1e-4)
    assert not torch.allclose(out_swapped[:, 0], base[:, 0], atol=1e-6)


def _documented_languagebind_checkpoint(d: int = 1024, layers: int = 24, mlp: int = 4096,
                                        frames: int = 8) -> dict[str, tuple[int, ...]]:
    """Key -> shape of LanguageBind/LanguageBind_Video_merge's state dict, written from its
    modeling_video.py (CLIP ViT-L/14 vision tower + temporal attention), not from our module."""
    keys: dict[str, tuple[int, ...]] = {
        "vision_model.embeddings.class_embedding": (d,),
        "vision_model.embeddings.patch_embedding.weight": (d, 3, 14, 14),
        "vision_model.embeddings.position_embedding.weight": (257, d),
        "vision_model.embeddings.position_ids": (1, 257),  # a buffer older transformers saved
        "vision_model.pre_layrnorm.weight": (d,), "vision_model.pre_layrnorm.bias": (d,),
        "vision_model.post_layernorm.weight": (d,), "vision_model.post_layernorm.bias": (d,),
        # the rest of LanguageBindVideo, which the vision encoder ignores
        "text_model.embeddings.token_embedding.weight": (49408, 768),
        "text_model.final_layer_norm.weight": (768,), "visual_projection.weight": (768, d),
        "text_projection.weight": (768, 768), "logit_scale": (),
    }
    for i in range(layers):
        pre = f"vision_model.encoder.layers.{i}."
        keys[pre + "temporal_embedding"] = (1, frames, d)
        for attn in ("temporal_attn", "self_attn"):
            for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
                keys[f"{pre}{attn}.{proj}.weight"], keys[f"{pre}{attn}.{proj}.bias"] = (d, d), (d,)
        for norm in ("temporal_layer_norm1", "layer_norm1", "layer_norm2"):
            keys[f"{pre}{norm}.weight"], keys[f"{pre}{norm}.bias"] = (d,), (d,)
        keys[pre + "mlp.fc1.weight"], keys[pre + "mlp.fc1.bias"] = (mlp, d), (mlp,)
        keys[pre + "mlp.fc2.weight"], keys[pre + "mlp.fc2.bias"] = (d, mlp), (d,)
    return keys


def test_languagebind_loads_the_documented_checkpoint_layout() -> None:
    from encoders.languagebind import (
        LanguageBindVisionConfig,
        LanguageBindVisionTransformer,
        adapt_languagebind_state_dict,
    )

    layout = _documented_languagebind_checkpoint()
    sd = {k: torch.empty(shape, device="meta") for k, shape in layout.items()}  # shapes only
    with torch.device("meta"):
        model = LanguageBindVisionTransformer(
            LanguageBindVisionConfig.from_kwargs(get_spec("languagebind").arch))
    res = model.load_state_dict(adapt_languagebind_state_dict(sd), strict=False, assign=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    # Round trip: our parameters are exactly the checkpoint's vision keys, with its shapes.
    ours = {f"vision_model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    vision = {k: v for k, v in layout.items()
              if k.startswith("vision_model.") and not k.endswith("position_ids")}
    assert ours == vision
    # Built as an encoder, blocks after the kept (penultimate) one are dropped.
    with torch.device("meta"):
        enc = build_encoder("languagebind", random_init=True, device="meta")
    assert len(enc.backbone.vision_model.encoder.layers) == 23


@pytest.mark.parametrize("name", ENCODER_SETS["merv"] + ["clip"])
def test_full_size_architectures_give_reference_grids(name: str) -> None:
    spec = get_spec(name)
    with torch.device("meta"):  # shapes only: nothing is allocated or computed
        enc = build_encoder(name, random_init=True, device="meta")
        out = enc(torch.empty(1, spec.frames, 3, 224, 224))
    assert tuple(out.shape) == (1, *spec.output_shape)


@pytest.mark.parametrize("name", TINY)
def test_tiny_builds_are_deterministic(name: str, tiny_encoders) -> None:
    again = build_encoder(name)
    a, b = tiny_encoders[name].state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _checksum(enc: FrozenEncoder) -> str:
    return sum(float(v.double().abs().sum()) for v in enc.state_dict().values()).hex()


def test_fingerprints_and_tiny_weights_identical_across_processes(tiny_encoders) -> None:
    # One subprocess (imports dominate the cost) with a different hash seed than ours.
    names = ENCODER_SETS["merv"] + ["clip"] + TINY
    code = (
        "import json, encoders\n"
        f"fp = {{n: encoders.get_spec(n).fingerprint() for n in {names!r}}}\n"
        f"sums = {{n: sum(float(v.double().abs().sum()) for v in "
        f"encoders.build_encoder(n).state_dict().values()).hex() for n in {TINY!r}}}\n"
        "print(json.dumps([fp, sums]))\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2],
                         env=env, check=True, capture_output=True, text=True).stdout
    fingerprints, sums = json.loads(out.strip().splitlines()[-1])
    assert fingerprints == {n: get_spec(n).fingerprint() for n in names}
    assert sums == {n: _checksum(tiny_encoders[n]) for n in TINY}


def test_random_init_differs_from_seed_to_seed_of_specs(tiny_encoders) -> None:
    a = tiny_encoders["dinov2-tiny"].backbone.model.patch_embed.proj.weight
    b = build_encoder(get_spec("dinov2-tiny").replace(name="dinov2-tiny-b")).backbone
    assert not torch.equal(a, b.model.patch_embed.proj.weight)
