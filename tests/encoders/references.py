"""References built from the libraries, for comparison with ours: the preprocessing pipelines
(frame by frame) and LanguageBind's video tower (from transformers' CLIP parts)."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn
from torchvision import transforms as T


def pil_reference(frames: torch.Tensor, spec) -> torch.Tensor:
    """torchvision transforms on PIL images (dinov2, siglip, vivit, clip): [F, 3, 224, 224]."""
    interp = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR}[
        spec.interpolation
    ]
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


class ReferenceLanguageBindLayer(nn.Module):
    """LanguageBind's modeling_video.CLIPEncoderLayer (add_time_attn), from transformers' CLIP
    attention (eager) and MLP, with the reference's rearranges written out."""

    def __init__(self, cfg, frames: int) -> None:
        super().__init__()
        from transformers.models.clip.modeling_clip import CLIPMLP, CLIPAttention

        d, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.t = frames
        self.temporal_embedding = nn.Parameter(torch.zeros(1, frames, d))
        self.temporal_attn = CLIPAttention(cfg)
        self.temporal_layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = CLIPAttention(cfg)
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.mlp = CLIPMLP(cfg)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        bt, n, d = h.shape
        t = self.t

        def time_major(x):  # '(b t) n d -> (b n) t d'
            return x.reshape(bt // t, t, n, d).permute(0, 2, 1, 3).reshape(-1, t, d)

        def frame_major(x):  # '(b n) t d -> (b t) n d'
            return x.reshape(bt // t, n, t, d).permute(0, 2, 1, 3).reshape(bt, n, d)

        h = frame_major(time_major(h) + self.temporal_embedding[:, :t, :])
        h = h + frame_major(self.temporal_attn(self.temporal_layer_norm1(time_major(h)))[0])
        h = h + self.self_attn(self.layer_norm1(h))[0]
        return h + self.mlp(self.layer_norm2(h))


class ReferenceLanguageBind(nn.Module):
    def __init__(self, cfg, frames: int) -> None:
        super().__init__()
        from transformers.models.clip.modeling_clip import CLIPVisionEmbeddings

        self.embeddings = CLIPVisionEmbeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            ReferenceLanguageBindLayer(cfg, frames) for _ in range(cfg.num_hidden_layers)
        )
        self.post_layernorm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, pixels: torch.Tensor) -> list[torch.Tensor]:
        """HF-style hidden_states: the embeddings, then every layer's output."""
        hidden = [self.pre_layrnorm(self.embeddings(pixels))]
        for layer in self.encoder.layers:
            hidden.append(layer(hidden[-1]))
        return hidden


def reference_languagebind_config(arch: dict) -> tuple[object, int]:
    """(transformers CLIPVisionConfig with eager attention, temporal frames) for a LanguageBind
    spec's `arch`: an attention path independent of our SDPA one."""
    from transformers import CLIPVisionConfig

    arch = dict(arch)
    frames = arch.pop("num_frames")
    cfg = CLIPVisionConfig(**arch)
    cfg._attn_implementation = "eager"
    return cfg, frames
