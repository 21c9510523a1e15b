"""Batched frame preprocessing on torch tensors (runs on whatever device the frames are on).

Two resize implementations reproduce the reference pipelines:

- "pil" (dinov2, siglip, vivit, clip): the references run torchvision transforms on PIL images.
  `encoders.pil_resize` reproduces Pillow's resampling exactly (same uint8 result on every
  pixel) as batched matrix products; output sizes and the centre crop follow torchvision.
- "tensor" (languagebind): the reference resizes a float video tensor with plain
  F.interpolate(align_corners=False, no antialias) and computes the long side with floor.

No random flip, ever: cached features must be deterministic.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from encoders.pil_resize import pil_resize
from encoders.spec import EncoderSpec


def _short_side_size(h: int, w: int, size: int, impl: str) -> tuple[int, int]:
    if impl == "pil":  # torchvision.transforms.functional._compute_resized_output_size
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        return (new_long, new_short) if w <= h else (new_short, new_long)
    # pytorchvideo short_side_scale, as vendored in LanguageBind's processing_video.py
    if w < h:
        return int(math.floor((float(h) / w) * size)), size
    return size, int(math.floor((float(w) / h) * size))


def _center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot centre-crop {size} from {h}x{w}")
    top = int(round((h - size) / 2.0))
    left = int(round((w - size) / 2.0))
    return x[..., top : top + size, left : left + size]


def resize_frames(frames: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    """uint8 [F, H, W, 3] -> float [F, 3, S, S] in [0, 1] (not yet normalised)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(
            f"expected uint8 frames [F, H, W, 3], got {frames.dtype} {tuple(frames.shape)}"
        )
    size = spec.image_size
    x = frames.permute(0, 3, 1, 2)  # [F, 3, H, W] uint8
    h, w = x.shape[-2:]
    out_hw = (
        (size, size) if spec.resize == "squash" else _short_side_size(h, w, size, spec.resize_impl)
    )
    if spec.resize_impl == "pil":
        x = pil_resize(x, out_hw, spec.interpolation)  # float64 holding PIL's uint8 values
    else:
        x = F.interpolate(x.float(), size=out_hw, mode=spec.interpolation, align_corners=False)
    if spec.resize == "short_side_center_crop":
        x = _center_crop(x, size)
    x = x.float()  # then /255 in float32, as torchvision's ToTensor
    return x / 255.0


def normalize(x: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    mean = torch.tensor(spec.mean, dtype=x.dtype, device=x.device).view(3, 1, 1)
    std = torch.tensor(spec.std, dtype=x.dtype, device=x.device).view(3, 1, 1)
    return (x - mean) / std


def preprocess_frames(frames: torch.Tensor, spec: EncoderSpec) -> torch.Tensor:
    """One video's uint8 frames [F, H, W, 3] -> normalised float [F, 3, S, S]."""
    return normalize(resize_frames(frames, spec), spec).contiguous()
