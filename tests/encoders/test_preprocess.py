"""Tensor preprocessing vs the reference pipelines (torchvision on PIL; LanguageBind's tensor ops)."""

from __future__ import annotations

import PIL
import pytest
import torch

from encoders import build_encoder, get_spec
from encoders.preprocess import preprocess_frames
from tests.encoders.references import languagebind_reference, pil_reference

# Pillow >= 13 picks the pass order that our emulation follows; older Pillow can differ by one
# uint8 level on frames whose height shrinks much more than their width.
PIL_EXACT = int(PIL.__version__.split(".")[0]) >= 13


@pytest.mark.parametrize("name", ["dinov2", "siglip", "vivit", "clip"])
@pytest.mark.parametrize(
    "hw",
    [
        (240, 320),
        (300, 226),
        (180, 180),
        (96, 128),
        (360, 640),
        (640, 360),
        (720, 1280),
        (225, 224),
    ],
)
def test_matches_torchvision_on_pil(name: str, hw: tuple[int, int], video_factory) -> None:
    spec = get_spec(name)
    frames = video_factory(*hw, seed=hw[0], frames=3)
    ours = preprocess_frames(frames, spec)
    ref = pil_reference(frames, spec)
    assert ours.shape == ref.shape == (3, 3, 224, 224) and ours.dtype == ref.dtype
    # Pillow's fixed-point resampling is reproduced exactly: equal tensors, which is well within
    # the 1e-2 asked for. With an older Pillow, at most one uint8 level on a few pixels.
    diff = (ours - ref).abs()
    if PIL_EXACT:
        assert torch.equal(ours, ref), diff.max()
    else:
        assert diff.max() <= 1 / 255 / min(spec.std) + 1e-6 and diff.mean() < 1e-3


def test_batched_preprocessing_equals_frame_by_frame(video_factory) -> None:
    spec = get_spec("dinov2")
    frames = video_factory(300, 400, seed=5, frames=8)
    batched = preprocess_frames(frames, spec)
    single = torch.cat([preprocess_frames(frames[i : i + 1], spec) for i in range(8)])
    assert torch.equal(batched, single)


@pytest.mark.parametrize("hw", [(240, 320), (300, 226), (224, 224)])
def test_languagebind_matches_reference_tensor_pipeline(hw, video_factory) -> None:
    spec = get_spec("languagebind")
    frames = video_factory(*hw, seed=7, frames=4)
    ours = preprocess_frames(frames, spec)
    ref = languagebind_reference(frames, spec)
    assert ours.shape == ref.shape == (4, 3, 224, 224)
    torch.testing.assert_close(ours, ref, atol=1e-4, rtol=1e-4)


def test_preprocess_never_flips(video_factory) -> None:
    spec = get_spec("languagebind")
    frames = video_factory(240, 320, seed=3, frames=2)
    outs = [preprocess_frames(frames, spec) for _ in range(5)]
    assert all(torch.equal(outs[0], o) for o in outs)


def _colour_stamped_video() -> torch.Tensor:
    """32 decoded frames; frame i is one flat colour, (4i, 255 - 3i, 37i mod 256): distinct per
    frame and per channel."""
    video = torch.empty(32, 60, 80, 3, dtype=torch.uint8)
    for i in range(32):
        video[i] = torch.tensor([4 * i, 255 - 3 * i, (37 * i) % 256], dtype=torch.uint8)
    return video


# MERV's reference: every 16-frame encoder takes sampled frames 0, 2, ..., 30; ViViT takes all 32.
EVERY_SECOND = [0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30]


@pytest.mark.parametrize(
    "name,taken",
    [
        ("siglip-tiny", EVERY_SECOND),
        ("languagebind-tiny", EVERY_SECOND),
        ("vivit-tiny", list(range(32))),
    ],
)
def test_encoder_preprocess_takes_the_documented_frames(name: str, taken: list[int]) -> None:
    enc = build_encoder(name)
    video = _colour_stamped_video()
    pixels = enc.preprocess([video])
    assert pixels.shape == (1, len(taken), 3, 224, 224)
    for j, i in enumerate(taken):  # output frame j is sampled frame i, preprocessed on its own
        assert torch.equal(pixels[0, j], preprocess_frames(video[i : i + 1], enc.spec)[0]), j
    # A flat frame stays flat through any resize: every pixel is (v / 255 - mean) / std.
    mean, std = torch.tensor(enc.spec.mean), torch.tensor(enc.spec.std)
    values = torch.tensor([[4 * i, 255 - 3 * i, (37 * i) % 256] for i in taken]) / 255.0
    expected = ((values - mean) / std)[:, :, None, None].expand(-1, -1, 224, 224)
    torch.testing.assert_close(pixels[0], expected, atol=1e-5, rtol=0)


def test_preprocess_rejects_bad_input() -> None:
    enc = build_encoder("siglip-tiny")
    with pytest.raises(ValueError, match="expected"):
        enc.preprocess([torch.zeros(16, 64, 64, 3, dtype=torch.uint8)])
    with pytest.raises(ValueError, match="uint8"):
        preprocess_frames(torch.zeros(2, 64, 64, 3), get_spec("siglip"))
