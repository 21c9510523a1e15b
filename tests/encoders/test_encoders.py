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
from torch import nn

from encoders import ENCODER_SETS, EncoderSpec, FrozenEncoder, build_encoder, get_spec
from encoders.base import _seed_for
from encoders.languagebind import LanguageBindVisionConfig, LanguageBindVisionTransformer
from tests.encoders.references import ReferenceLanguageBind, reference_languagebind_config

TINY = ENCODER_SETS["tiny"] + ["clip-tiny"]


class _OnFirstUse(dict):
    """name -> value, made when first asked for: a run of one test builds only its encoder."""

    def __init__(self, make) -> None:
        super().__init__()
        self.make = make

    def __missing__(self, name: str):
        self[name] = value = self.make(name)
        return value


@pytest.fixture(scope="module")
def tiny_encoders() -> dict[str, FrozenEncoder]:
    return _OnFirstUse(build_encoder)


@pytest.fixture(scope="module")
def pixels(tiny_encoders, videos) -> dict[str, torch.Tensor]:
    return _OnFirstUse(lambda name: tiny_encoders[name].preprocess(videos))


@pytest.mark.parametrize("name", TINY)
def test_encode_shape_and_finite(name: str, tiny_encoders, videos) -> None:
    enc = tiny_encoders[name]
    out = enc.encode(videos)
    assert out.shape == (2, *enc.spec.output_shape)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert out[0].std() > 0 and not torch.allclose(out[0], out[1])
    assert not any(p.requires_grad for p in enc.parameters()) and not enc.training


# Kept layers. The reference is each library's own full-depth model holding the weights our
# tiny encoder was built with (same constructor under the same seed; checked tensor by tensor
# against our pruned model), run as the library runs it. Which hidden state MERV's reference keeps
# is written out per encoder, and every tiny block changes its input clearly, so taking the
# neighbouring layer, or adding/dropping the final norm, fails the comparison.


def _library_model(spec: EncoderSpec) -> nn.Module:
    """The library's unpruned model for tiny `spec`, with the weights build_encoder gave it."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed_for(spec))
        if spec.backend == "timm":
            return timm.create_model(
                spec.checkpoint,
                pretrained=False,
                img_size=spec.image_size,
                num_classes=0,
                **spec.arch,
            ).eval()
        if spec.backend == "hf_vivit":
            from transformers import VivitConfig, VivitModel

            return VivitModel(VivitConfig(**spec.arch), add_pooling_layer=False).eval()
        if spec.backend == "hf_clip":
            from transformers import CLIPVisionConfig, CLIPVisionModel

            return CLIPVisionModel(CLIPVisionConfig(**spec.arch)).eval()
        # languagebind: our module only supplies the initial weights; transformers' CLIP parts,
        # arranged as LanguageBind's modeling_video does, compute the reference.
        src = LanguageBindVisionTransformer(LanguageBindVisionConfig.from_kwargs(spec.arch))
        src.init_weights()
        ref = ReferenceLanguageBind(*reference_languagebind_config(spec.arch))
    missing = ref.load_state_dict(src.state_dict(), strict=False).missing_keys
    assert set(missing) <= {"embeddings.position_ids"}
    return ref.eval()


def _assert_holds_our_weights(ref: nn.Module, ours: nn.Module) -> None:
    ref_sd, ours_sd = ref.state_dict(), ours.state_dict()
    assert ours_sd.keys() <= ref_sd.keys()
    assert all(torch.equal(v, ref_sd[k]) for k, v in ours_sd.items())


def _assert_clearly_differs(ours: torch.Tensor, other: torch.Tensor, what: str) -> None:
    """`ours` is not `other`: more than 2% apart (tiny blocks move their input by 8% or more)."""
    assert ours.shape == other.shape, what
    assert (ours - other).norm() > 0.02 * other.norm(), f"kept layer indistinguishable from {what}"


def _tokens(out: torch.Tensor) -> torch.Tensor:
    """Our per-frame grid [B, T, Hg, Wg, C] -> [B * T, Hg * Wg, C], the libraries' layout."""
    return out.flatten(0, 1).flatten(1, 2)


@pytest.mark.parametrize("name,prefix", [("dinov2-tiny", 5), ("siglip-tiny", 0)])
def test_timm_kept_layer_is_penultimate_block(
    name: str, prefix: int, tiny_encoders, pixels
) -> None:
    enc, spec = tiny_encoders[name], get_spec(name)
    ref = _library_model(spec)
    _assert_holds_our_weights(ref, enc.backbone.model)
    assert len(ref.blocks) == 2 and ref.num_prefix_tokens == prefix  # CLS + 4 registers / none
    x = pixels[name].flatten(0, 1)
    with torch.inference_mode():
        ours = _tokens(enc(pixels[name]))
        # Every block output by hand, all tokens: prefix tokens first, then the patch grid.
        hidden = [ref.norm_pre(ref.patch_drop(ref._pos_embed(ref.patch_embed(x))))]
        for blk in ref.blocks:
            hidden.append(blk(hidden[-1]))
        # MERV's own call: get_intermediate_layers on the penultimate block, prefix dropped.
        (merv,) = ref.get_intermediate_layers(x, n={len(ref.blocks) - 2}, norm=False)
        normed = ref.norm(hidden[-2])
        final = ref.forward_features(x)
    patches = 16 * 16 if name == "dinov2-tiny" else 14 * 14
    assert hidden[-2].shape == (x.shape[0], prefix + patches, spec.width)
    kept = hidden[-2][:, prefix:]
    torch.testing.assert_close(merv, kept, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours, kept, atol=1e-5, rtol=1e-5)
    _assert_clearly_differs(ours, hidden[-1][:, prefix:], "the last block")
    _assert_clearly_differs(ours, hidden[-3][:, prefix:], "the embeddings")
    _assert_clearly_differs(ours, normed[:, prefix:], "the penultimate block after the norm")
    _assert_clearly_differs(ours, final[:, prefix:], "forward_features")


def test_vivit_kept_layer_is_last_hidden_state_after_layernorm(tiny_encoders, pixels) -> None:
    enc, spec = tiny_encoders["vivit-tiny"], get_spec("vivit-tiny")
    ref = _library_model(spec)
    _assert_holds_our_weights(ref, enc.backbone.model)
    with torch.inference_mode():
        out = ref(pixel_values=pixels["vivit-tiny"], output_hidden_states=True)
        ours = enc(pixels["vivit-tiny"])
        normed_penultimate = ref.layernorm(out.hidden_states[-2])
    assert pixels["vivit-tiny"].shape[1] == 32 and ours.shape == (2, 16, 14, 14, spec.width)
    assert len(out.hidden_states) == 3  # embeddings + 2 blocks
    lib = out.last_hidden_state  # after the final LayerNorm, as MERV uses it
    assert lib.shape == (2, 1 + 16 * 14 * 14, spec.width)  # CLS first, then (t, h, w)
    ours = ours.reshape(2, -1, spec.width)
    torch.testing.assert_close(ours, lib[:, 1:], atol=1e-5, rtol=1e-5)
    _assert_clearly_differs(ours, out.hidden_states[-1][:, 1:], "the last block without norm")
    _assert_clearly_differs(ours, normed_penultimate[:, 1:], "the penultimate block, normed")
    _assert_clearly_differs(ours, out.hidden_states[-2][:, 1:], "the penultimate block")


def test_clip_kept_layer_is_penultimate_hidden_state(tiny_encoders, pixels) -> None:
    enc, spec = tiny_encoders["clip-tiny"], get_spec("clip-tiny")
    ref = _library_model(spec)
    _assert_holds_our_weights(ref, enc.backbone.model)
    with torch.inference_mode():
        out = ref(pixel_values=pixels["clip-tiny"].flatten(0, 1), output_hidden_states=True)
        ours = _tokens(enc(pixels["clip-tiny"]))
        normed = getattr(ref, "vision_model", ref).post_layernorm(out.hidden_states[-2])
    assert len(out.hidden_states) == 3 and out.hidden_states[-2].shape[1] == 1 + 16 * 16
    # penultimate, no post-layernorm, CLS dropped: as MERV/LLaVA use it
    torch.testing.assert_close(ours, out.hidden_states[-2][:, 1:], atol=1e-5, rtol=1e-5)
    _assert_clearly_differs(ours, out.hidden_states[-1][:, 1:], "the last block")
    _assert_clearly_differs(ours, out.hidden_states[-3][:, 1:], "the embeddings")
    _assert_clearly_differs(ours, normed[:, 1:], "the penultimate block after post_layernorm")


def test_languagebind_kept_layer_is_penultimate_hidden_state(tiny_encoders, pixels) -> None:
    enc, spec = tiny_encoders["languagebind-tiny"], get_spec("languagebind-tiny")
    ref = _library_model(spec)
    _assert_holds_our_weights(ref, enc.backbone.vision_model)
    with torch.inference_mode():
        hidden = ref(pixels["languagebind-tiny"].flatten(0, 1))  # 2 videos x two 8-frame clips
        ours = _tokens(enc(pixels["languagebind-tiny"]))
        normed = ref.post_layernorm(hidden[-2])
    assert len(hidden) == 3 and hidden[-2].shape == (32, 1 + 16 * 16, spec.width)
    # penultimate layer, before post_layernorm, CLS dropped
    torch.testing.assert_close(ours, hidden[-2][:, 1:], atol=1e-5, rtol=1e-5)
    _assert_clearly_differs(ours, hidden[-1][:, 1:], "the last layer")
    _assert_clearly_differs(ours, hidden[-3][:, 1:], "the embeddings")
    _assert_clearly_differs(ours, normed[:, 1:], "the penultimate layer after post_layernorm")


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


def _documented_languagebind_checkpoint(
    d: int = 1024, layers: int = 24, mlp: int = 4096, frames: int = 8
) -> dict[str, tuple[int, ...]]:
    """Key -> shape of LanguageBind/LanguageBind_Video_merge's state dict, written from its
    modeling_video.py (CLIP ViT-L/14 vision tower + temporal attention), not from our module."""
    keys: dict[str, tuple[int, ...]] = {
        "vision_model.embeddings.class_embedding": (d,),
        "vision_model.embeddings.patch_embedding.weight": (d, 3, 14, 14),
        "vision_model.embeddings.position_embedding.weight": (257, d),
        "vision_model.embeddings.position_ids": (1, 257),  # a buffer older transformers saved
        "vision_model.pre_layrnorm.weight": (d,),
        "vision_model.pre_layrnorm.bias": (d,),
        "vision_model.post_layernorm.weight": (d,),
        "vision_model.post_layernorm.bias": (d,),
        # the rest of LanguageBindVideo, which the vision encoder ignores
        "text_model.embeddings.token_embedding.weight": (49408, 768),
        "text_model.final_layer_norm.weight": (768,),
        "visual_projection.weight": (768, d),
        "text_projection.weight": (768, 768),
        "logit_scale": (),
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
            LanguageBindVisionConfig.from_kwargs(get_spec("languagebind").arch)
        )
    res = model.load_state_dict(adapt_languagebind_state_dict(sd), strict=False, assign=True)
    assert res.missing_keys == [] and res.unexpected_keys == []
    # Round trip: our parameters are exactly the checkpoint's vision keys, with its shapes.
    ours = {f"vision_model.{k}": tuple(v.shape) for k, v in model.state_dict().items()}
    vision = {
        k: v
        for k, v in layout.items()
        if k.startswith("vision_model.") and not k.endswith("position_ids")
    }
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
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fingerprints, sums = json.loads(out.strip().splitlines()[-1])
    assert fingerprints == {n: get_spec(n).fingerprint() for n in names}
    assert sums == {n: _checksum(tiny_encoders[n]) for n in TINY}


def test_random_init_differs_from_seed_to_seed_of_specs(tiny_encoders) -> None:
    a = tiny_encoders["dinov2-tiny"].backbone.model.patch_embed.proj.weight
    b = build_encoder(get_spec("dinov2-tiny").replace(name="dinov2-tiny-b")).backbone
    assert not torch.equal(a, b.model.patch_embed.proj.weight)
