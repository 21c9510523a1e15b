"""Weight loading: fast failure without weights, and real round trips through local checkpoints."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from encoders import WeightsNotFoundError, build_encoder, get_spec
from encoders.languagebind import LanguageBindVisionConfig, LanguageBindVisionTransformer


@pytest.mark.parametrize("name", ["languagebind", "dinov2", "vivit", "siglip", "clip"])
def test_missing_weights_fail_fast_offline(name: str) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        build_encoder(name)
    msg = str(info.value)
    assert "\n" not in msg and f"'{name}'" in msg and f"--weights {name}=" in msg
    assert f"weights.{name}" in msg and "HF_HUB_OFFLINE" in msg


def test_missing_local_path(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError, match=str(tmp_path / "nope")):
        build_encoder("dinov2", weights=tmp_path / "nope")
    with pytest.raises(WeightsNotFoundError):  # an empty directory holds no checkpoint
        build_encoder("dinov2", weights=tmp_path)


def test_tiny_refuses_weights(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tiny"):
        build_encoder("dinov2-tiny", weights=tmp_path)


def _loadable(name: str):  # a tiny architecture that, unlike tiny specs, takes weights
    return get_spec(name).replace(name=f"{name}-ckpt", tiny=False)


def _pixels(spec, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(1, spec.frames, 3, 224, 224, generator=g)


@pytest.mark.parametrize("name", ["dinov2-tiny", "siglip-tiny"])
def test_timm_checkpoint_loads_like_timm(name: str, tmp_path: Path) -> None:
    spec = _loadable(name)
    # Checkpoint saved at DINOv2's native 518 px (37x37 position grid), as on the hub.
    src = timm.create_model(
        spec.checkpoint,
        pretrained=False,
        img_size=518 if "dino" in name else 224,
        num_classes=0,
        **spec.arch,
    )
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(path))
    enc = build_encoder(spec, weights=path)
    # Reference: timm's own pretrained-loading path on the same file, at img_size 224.
    ref = timm.create_model(
        spec.checkpoint,
        pretrained=True,
        img_size=224,
        num_classes=0,
        pretrained_cfg_overlay={"file": str(path)},
        **spec.arch,
    ).eval()
    x = _pixels(spec)
    with torch.inference_mode():
        ours = enc(x)
        (lib,) = ref.get_intermediate_layers(x.flatten(0, 1), n={len(ref.blocks) - 2})
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib, atol=1e-5, rtol=1e-5)
    # DINOv2-reg and SigLIP keep no position embedding for prefix tokens: grid positions only.
    assert enc.backbone.model.pos_embed.shape[1] == spec.grid[0] * spec.grid[1]


def test_vivit_classification_checkpoint_loads(tmp_path: Path) -> None:
    from transformers import VivitConfig, VivitForVideoClassification

    # google/vivit-b-16x2-kinetics400 is a VivitForVideoClassification checkpoint.
    spec = _loadable("vivit-tiny")
    torch.manual_seed(1)
    src = VivitForVideoClassification(VivitConfig(**spec.arch, num_labels=3)).eval()
    src.save_pretrained(tmp_path)
    enc = build_encoder(spec, weights=tmp_path)
    x = _pixels(spec)
    with torch.inference_mode():
        lib = src.vivit(pixel_values=x).last_hidden_state[:, 1:]
        ours = enc(x)
    torch.testing.assert_close(ours.reshape(lib.shape), lib, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("as_file", [False, True])
def test_clip_checkpoint_loads(as_file: bool, tmp_path: Path) -> None:
    from transformers import CLIPConfig, CLIPModel, CLIPTextConfig, CLIPVisionConfig

    # openai/clip-vit-large-patch14 is a full CLIPModel (text + vision) checkpoint.
    spec = _loadable("clip-tiny")
    torch.manual_seed(2)
    text = CLIPTextConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=100,
        projection_dim=16,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    cfg = CLIPConfig(
        text_config=text.to_dict(),
        vision_config=CLIPVisionConfig(**spec.arch).to_dict(),
        projection_dim=16,
    )
    src = CLIPModel(cfg).eval()
    src.save_pretrained(tmp_path)
    enc = build_encoder(spec, weights=tmp_path / "model.safetensors" if as_file else tmp_path)
    x = _pixels(spec)
    with torch.inference_mode():
        out = src.vision_model(pixel_values=x.flatten(0, 1), output_hidden_states=True)
        lib = out.hidden_states[-2]
        ours = enc(x)
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib[:, 1:], atol=1e-5, rtol=1e-5)


def test_languagebind_full_checkpoint_layout_loads(tmp_path: Path) -> None:
    spec = _loadable("languagebind-tiny")
    torch.manual_seed(3)
    src = LanguageBindVisionTransformer(LanguageBindVisionConfig.from_kwargs(spec.arch))
    src.init_weights()
    src.eval()
    # Shaped like LanguageBindVideo's state dict: vision tower under `vision_model.` next to the
    # text tower, projections and logit scale; old position_ids buffer; pickle (.bin) format.
    sd = {f"vision_model.{k}": v for k, v in src.state_dict().items()}
    sd["vision_model.embeddings.position_ids"] = torch.arange(257)[None]
    sd["text_model.embeddings.token_embedding.weight"] = torch.zeros(10, 4)
    sd["visual_projection.weight"] = torch.zeros(4, spec.width)
    sd["logit_scale"] = torch.tensor(1.0)
    torch.save(sd, tmp_path / "pytorch_model.bin")
    enc = build_encoder(spec, weights=tmp_path)
    x = _pixels(spec)
    with torch.inference_mode():
        lib = src(x.flatten(0, 1), layer=-2)
        ours = enc(x)
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib[:, 1:])

    del sd["vision_model.encoder.layers.0.temporal_embedding"]
    torch.save(sd, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="temporal_embedding"):
        build_encoder(spec, weights=tmp_path)
