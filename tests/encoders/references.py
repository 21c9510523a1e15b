"""The reference preprocessing pipelines, frame by frame, for comparison with ours."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import transforms as T


def pil_reference(frames: torch.Tensor, spec) -> torch.Tensor:
    """torchvision transforms on PIL images (dinov2, siglip, vivit, clip): [F, 3, 224, 224]."""
    interp = {"bicubic": T.InterpolationMode.BICUBIC,
              "bilinear": T.InterpolationMode.BILINEAR}[spec.interpolation]
    if spec.resize == "squash":
        resize = [T.Resize((224, 224), interpolation=interp)]
    else:
        resize = [T.Resize(224, interpolation=interp), T.CenterCrop(224)]
    tf = T.Compose([*resize, T.ToTensor(), T.Normalize(spec.mean, spec.std)])
    return torch.stack([tf(Image.fromarray(f.numpy())) for f in frames])


def languagebind_reference(frames: torch.Tensor, spec) -> torch.Tensor:
    """LanguageBind's float-tensor video transform: [F, 3, 224, 224]."""
    # What LanguageBind's decord video transform does: /255, normalise, short side scale with
    # plain bilinear interpolate (floor for the long side), centre crop. (No random flip.)
    x = frames.permute(3, 0, 1, 2).float() / 255.0  # C, T, H, W
    mean = torch.tensor(spec.mean).view(3, 1, 1, 1)
    std = torch.tensor(spec.std).view(3, 1, 1, 1)
    x = (x - mean) / std
    _, _, h, w = x.shape
    if w < h:
        size = (int(math.floor(h / w * 224)), 224)
    else:
        size = (224, int(math.floor(w / h * 224)))
    x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    top, left = int(round((x.shape[-2] - 224) / 2.0)), int(round((x.shape[-1] - 224) / 2.0))
    return x[..., top : top + 224, left : left + 224].permute(1, 0, 2, 3)
