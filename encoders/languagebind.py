"""LanguageBind video tower, written in-house so a real checkpoint loads without remote code.

Architecture: a CLIP ViT (pre-LN, CLS token, learned position embedding) in which every encoder
layer first runs *temporal* attention (each spatial token attends over the frames of its clip,
after adding a learned per-layer temporal embedding), then the usual spatial self-attention and
MLP. The temporal module is built for `num_frames` (8) frames; inputs are laid out as
(batch * frames) images, so 16 frames per video are processed as two independent 8-frame clips.

Parameter names follow `LanguageBind/LanguageBind_Video_merge` (the `vision_model.*` part):
  embeddings.{class_embedding, patch_embedding.weight, position_embedding.weight}, pre_layrnorm,
  encoder.layers.N.{temporal_embedding, temporal_layer_norm1, temporal_attn.{q,k,v,out}_proj,
  layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}, post_layernorm.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.config import from_mapping


@dataclass
class LanguageBindVisionConfig:
    hidden_size: int = 1024
    intermediate_size: int = 4096
    num_hidden_layers: int = 24
    num_attention_heads: int = 16
    patch_size: int = 14
    image_size: int = 224
    num_channels: int = 3
    num_frames: int = 8  # frames per temporal clip
    layer_norm_eps: float = 1e-5
    hidden_act: str = "gelu"

    @classmethod
    def from_kwargs(cls, kwargs: Mapping[str, Any]) -> LanguageBindVisionConfig:
        """The config of a spec's `arch`; unknown keys are refused, naming the known ones."""
        return from_mapping(cls, kwargs, "LanguageBind arch")


def _activation(name: str) -> nn.Module:
    if name == "gelu":
        return nn.GELU()
    if name == "quick_gelu":
        return _QuickGELU()
    raise ValueError(f"unsupported hidden_act {name!r}")


class _QuickGELU(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(1.702 * x)


class Attention(nn.Module):
    """Multi-head attention with CLIP's projection names, computed with SDPA."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"hidden size {dim} not divisible by {heads} heads")
        self.heads = heads
        self.q_proj = nn.Linear(dim, dim)
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape

        def split(t: torch.Tensor) -> torch.Tensor:
            return t.view(b, n, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        out = F.scaled_dot_product_attention(q, k, v)  # scale = head_dim ** -0.5, as in CLIP
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, cfg: LanguageBindVisionConfig) -> None:
        super().__init__()
        self.fc1 = nn.Linear(cfg.hidden_size, cfg.intermediate_size)
        self.act = _activation(cfg.hidden_act)
        self.fc2 = nn.Linear(cfg.intermediate_size, cfg.hidden_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class EncoderLayer(nn.Module):
    def __init__(self, cfg: LanguageBindVisionConfig) -> None:
        super().__init__()
        d, eps = cfg.hidden_size, cfg.layer_norm_eps
        self.t = cfg.num_frames
        self.temporal_embedding = nn.Parameter(torch.zeros(1, cfg.num_frames, d))
        self.temporal_layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.temporal_attn = Attention(d, cfg.num_attention_heads)
        self.layer_norm1 = nn.LayerNorm(d, eps=eps)
        self.self_attn = Attention(d, cfg.num_attention_heads)
        self.layer_norm2 = nn.LayerNorm(d, eps=eps)
        self.mlp = MLP(cfg)

    def _to_time_major(self, x: torch.Tensor) -> torch.Tensor:  # [(b t), n, d] -> [(b n), t, d]
        bt, n, d = x.shape
        return x.view(bt // self.t, self.t, n, d).transpose(1, 2).reshape(-1, self.t, d)

    def _to_frame_major(self, x: torch.Tensor, n: int) -> torch.Tensor:  # inverse of the above
        d = x.shape[-1]
        return x.view(-1, n, self.t, d).transpose(1, 2).reshape(-1, n, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        if x.shape[0] % self.t:
            raise ValueError(f"{x.shape[0]} frames is not a multiple of the {self.t}-frame clip")
        # Temporal embedding is added to the residual stream itself (CLS included), as in the
        # reference; the reference skips it only when t == 1.
        xt = self._to_time_major(x)
        if self.t != 1:
            xt = xt + self.temporal_embedding[:, : self.t]
        x = self._to_frame_major(xt, n)
        x = x + self._to_frame_major(self.temporal_attn(self.temporal_layer_norm1(xt)), n)
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Embeddings(nn.Module):
    def __init__(self, cfg: LanguageBindVisionConfig) -> None:
        super().__init__()
        d = cfg.hidden_size
        self.grid = cfg.image_size // cfg.patch_size
        self.class_embedding = nn.Parameter(torch.zeros(d))
        self.patch_embedding = nn.Conv2d(
            cfg.num_channels, d, cfg.patch_size, cfg.patch_size, bias=False
        )
        self.position_embedding = nn.Embedding(self.grid * self.grid + 1, d)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:  # [N, 3, S, S] -> [N, 1 + P, d]
        dtype = self.patch_embedding.weight.dtype
        patches = self.patch_embedding(pixels.to(dtype)).flatten(2).transpose(1, 2)
        cls = self.class_embedding.to(patches.dtype).expand(patches.shape[0], 1, -1)
        return torch.cat([cls, patches], dim=1) + self.position_embedding.weight


class Encoder(nn.Module):
    def __init__(self, cfg: LanguageBindVisionConfig) -> None:
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(cfg) for _ in range(cfg.num_hidden_layers))


class LanguageBindVisionTransformer(nn.Module):
    """The `vision_model` of LanguageBindVideo; returns block outputs, not the pooled CLS."""

    def __init__(self, cfg: LanguageBindVisionConfig) -> None:
        super().__init__()
        self.config = cfg
        d = cfg.hidden_size
        self.embeddings = Embeddings(cfg)
        self.pre_layrnorm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)  # sic: the checkpoint's name
        self.encoder = Encoder(cfg)
        self.post_layernorm = nn.LayerNorm(d, eps=cfg.layer_norm_eps)

    def forward(
        self, pixels: torch.Tensor, layer: int = -2, final_norm: bool = False
    ) -> torch.Tensor:
        """pixels [N = clips * num_frames, 3, S, S] -> block `layer` output [N, 1 + P, d]."""
        depth = len(self.encoder.layers)
        stop = layer % depth if -depth <= layer < depth else None
        if stop is None:
            raise ValueError(f"layer {layer} out of range for {depth} blocks")
        x = self.pre_layrnorm(self.embeddings(pixels))
        for blk in self.encoder.layers[: stop + 1]:
            x = blk(x)
        return self.post_layernorm(x) if final_norm else x

    def truncate(self, layer: int) -> None:
        """Drop blocks after `layer` (never computed, saves memory)."""
        depth = len(self.encoder.layers)
        self.encoder.layers = self.encoder.layers[: layer % depth + 1]

    @torch.no_grad()
    def init_weights(self) -> None:
        """CLIP-style random init (used for tiny and random_init builds)."""
        d = self.config.hidden_size
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, EncoderLayer):
                nn.init.normal_(m.temporal_embedding, std=d**-0.5)
        nn.init.normal_(self.embeddings.class_embedding, std=d**-0.5)
        nn.init.normal_(self.embeddings.patch_embedding.weight, std=0.02)
        nn.init.normal_(self.embeddings.position_embedding.weight, std=0.02)


def adapt_languagebind_state_dict(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Full LanguageBindVideo (or vision-only) state dict -> keys of LanguageBindVisionTransformer.

    Keeps only the vision tower, strips the `vision_model.` prefix, drops the `position_ids`
    buffer older transformers saved, and undoes a PEFT wrapper prefix (`encoder.base_model.model.`,
    `.base_layer.`). Un-merged LoRA deltas are refused rather than silently dropped.
    """
    if any("lora_" in k for k in sd):
        raise ValueError("checkpoint holds un-merged LoRA weights; use LanguageBind_Video_merge")
    out: dict[str, torch.Tensor] = {}
    has_prefix = any(k.startswith("vision_model.") for k in sd)
    for key, value in sd.items():
        if has_prefix:
            if not key.startswith("vision_model."):
                continue  # text tower, projections, logit scale
            key = key[len("vision_model.") :]
        if key.endswith("position_ids"):
            continue
        key = key.replace("encoder.base_model.model.", "encoder.").replace(".base_layer.", ".")
        out[key] = value
    return out
