"""Full-size architectures with random weights: real forwards against the libraries' own outputs.

Each full-size encoder is built once per module (ViT-L in float32 is ~1.2 GB). The reference is
the library's unmodified model holding *our* tensors: it is built on the meta device and loaded
with `assign=True`, so nothing is copied or re-initialised; the blocks our pruned model dropped
(and the final norm) get random values there, which the compared outputs never depend on.

Frames, to keep this module near a minute on 2 CPU cores: the per-frame encoders (dinov2, siglip,
clip) run 1 frame, since their output T is their frame count; languagebind runs one 8-frame
clip (its temporal module's length; 16 frames are two such clips, shown on the tiny model in
test_encoders.py); vivit runs its full 32 frames. The 16-frame grids of all five are checked by
shape on the meta device (test_encoders.py::test_full_size_architectures_give_reference_grids).
"""

from __future__ import annotations

import pytest
import timm
import torch
from torch import nn

from encoders import FrozenEncoder, build_encoder
from tests.encoders.references import (
    ReferenceLanguageBind,
    languagebind_reference,
    pil_reference,
    reference_languagebind_config,
)

PER_FRAME = 1  # per-frame encoders: their T is their frame count


def share_weights(ref: nn.Module, ours: nn.Module, extra_buffers: dict | None = None) -> nn.Module:
    """Make meta-device `ref` use `ours`' tensors; random values for what `ours` lacks."""
    ref.load_state_dict(ours.state_dict(), strict=False, assign=True)
    buffers = {**dict(ours.named_buffers()), **(extra_buffers or {})}
    for prefix, module in ref.named_modules():
        for name, t in list(module._parameters.items()):
            if t is not None and t.is_meta:
                module._parameters[name] = nn.Parameter(
                    torch.randn(t.shape) * 0.02, requires_grad=False
                )
        for name, t in list(module._buffers.items()):
            if t is not None and t.is_meta:
                module._buffers[name] = buffers[f"{prefix}.{name}" if prefix else name]
    return ref.eval()


@pytest.fixture(scope="module")
def video(video_factory) -> torch.Tensor:
    return video_factory(240, 320, seed=11)  # uint8 [32, 240, 320, 3]


def _build(name: str, video: torch.Tensor) -> tuple[FrozenEncoder, torch.Tensor]:
    enc = build_encoder(name, random_init=True)
    return enc, enc.preprocess([video])  # [1, frames, 3, 224, 224]


@pytest.fixture(scope="module")
def dinov2(video):
    return _build("dinov2", video)


@pytest.fixture(scope="module")
def siglip(video):
    return _build("siglip", video)


@pytest.fixture(scope="module")
def clip(video):
    return _build("clip", video)


@pytest.fixture(scope="module")
def vivit(video):
    return _build("vivit", video)


@pytest.fixture(scope="module")
def languagebind(video):
    return _build("languagebind", video)


@pytest.mark.parametrize("name", ["languagebind", "dinov2", "vivit", "siglip", "clip"])
def test_batched_preprocessing_matches_reference_transform(name, request, video) -> None:
    enc, pixels = request.getfixturevalue(name)
    spec = enc.spec
    frames = video[:: spec.frame_stride]  # what the encoder takes of the 32 decoded frames
    reference = languagebind_reference if name == "languagebind" else pil_reference
    ref = reference(frames, spec)[None]
    assert pixels.shape == ref.shape == (1, spec.frames, 3, 224, 224)
    assert (pixels - ref).abs().max() <= 1e-2


@pytest.mark.parametrize("name,prefix", [("dinov2", 5), ("siglip", 0)])
def test_timm_kept_layer_is_timms_intermediate(name: str, prefix: int, request) -> None:
    enc, pixels = request.getfixturevalue(name)
    spec = enc.spec
    with torch.device("meta"):
        ref = timm.create_model(spec.checkpoint, pretrained=False, img_size=224, num_classes=0)
    ref = share_weights(ref, enc.backbone.model)
    x = pixels[:, :PER_FRAME]
    with torch.inference_mode():
        ours = enc.backbone(x)
        (out,) = ref.forward_intermediates(
            x.flatten(0, 1),
            indices=[len(ref.blocks) - 2],
            return_prefix_tokens=prefix > 0,
            norm=False,
            output_fmt="NLC",
            intermediates_only=True,
        )
    lib, lib_prefix = out if prefix else (out, None)  # timm splits the prefix tokens off
    assert len(ref.blocks) == (24 if name == "dinov2" else 12)
    assert ref.num_prefix_tokens == prefix  # CLS + 4 registers / none
    assert lib_prefix is None or lib_prefix.shape == (PER_FRAME, prefix, spec.width)
    assert ours.shape == (1, PER_FRAME, *spec.grid, spec.width)
    assert lib.shape == (PER_FRAME, spec.grid[0] * spec.grid[1], spec.width)
    torch.testing.assert_close(ours.flatten(0, 1).flatten(1, 2), lib, atol=1e-4, rtol=1e-4)


def test_clip_kept_layer_is_penultimate_hidden_state(clip) -> None:
    from transformers import CLIPVisionConfig, CLIPVisionModel

    enc, pixels = clip
    with torch.device("meta"):
        ref = CLIPVisionModel(CLIPVisionConfig(**enc.spec.arch))
    ref = share_weights(ref, enc.backbone.model)
    x = pixels[:, :PER_FRAME]
    with torch.inference_mode():
        ours = enc.backbone(x)
        hidden = ref(pixel_values=x.flatten(0, 1), output_hidden_states=True).hidden_states
    assert len(hidden) == 25 and hidden[-2].shape == (PER_FRAME, 1 + 16 * 16, 1024)
    assert ours.shape == (1, PER_FRAME, 16, 16, 1024)
    torch.testing.assert_close(
        ours.flatten(0, 1).flatten(1, 2), hidden[-2][:, 1:], atol=1e-4, rtol=1e-4
    )


def test_vivit_grid_from_32_frames_is_last_hidden_state(vivit) -> None:
    from transformers import VivitConfig, VivitModel

    enc, pixels = vivit
    with torch.device("meta"):
        ref = VivitModel(VivitConfig(**enc.spec.arch), add_pooling_layer=False)
    ref = share_weights(ref, enc.backbone.model)
    with torch.inference_mode():
        ours = enc(pixels)  # all 32 frames: tubelets of 2 -> 16 time steps
        out = ref(pixel_values=pixels, output_hidden_states=True)
    assert pixels.shape[1] == 32 and ours.shape == (1, 16, 14, 14, 768)
    assert out.last_hidden_state.shape == (1, 1 + 16 * 14 * 14, 768)  # CLS first, then (t, h, w)
    lib = out.last_hidden_state[:, 1:]  # after the final LayerNorm, as MERV keeps it
    torch.testing.assert_close(ours.reshape(lib.shape), lib, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(ours.reshape(lib.shape), out.hidden_states[-1][:, 1:], atol=1e-2)


def test_languagebind_kept_layer_matches_reference_layers(languagebind) -> None:
    enc, pixels = languagebind
    cfg, frames = reference_languagebind_config(enc.spec.arch)  # eager attention, not our SDPA
    with torch.device("meta"):
        ref = ReferenceLanguageBind(cfg, frames)
    positions = {"embeddings.position_ids": torch.arange(257)[None]}
    ref = share_weights(ref, enc.backbone.vision_model, positions)
    x = pixels[:, :frames]  # one 8-frame clip
    with torch.inference_mode():
        ours = enc.backbone(x)
        hidden = ref(x.flatten(0, 1))
    assert len(hidden) == 25 and hidden[-2].shape == (8, 257, 1024)
    assert ours.shape == (1, 8, 16, 16, 1024)
    # MERV keeps hidden_states[-2] (penultimate layer, before post_layernorm), CLS dropped.
    torch.testing.assert_close(
        ours.flatten(0, 1).flatten(1, 2), hidden[-2][:, 1:], atol=1e-4, rtol=1e-4
    )
