"""Backend `hf_clip`: the transformers CLIP vision tower, run per frame."""

from __future__ import annotations

from typing import Any

import torch

from encoders.backbones import register_backbone
from encoders.backbones._hf import HFBackbone
from encoders.spec import EncoderSpec


@register_backbone("hf_clip")
class ClipBackbone(HFBackbone):
    BLOCKS = ("encoder.layers", "vision_model.encoder.layers")
    FINAL_NORM = ("post_layernorm", "vision_model.post_layernorm")

    def model_class(self, spec: EncoderSpec) -> tuple[type, Any, dict[str, Any]]:
        from transformers import CLIPVisionConfig, CLIPVisionModel

        return CLIPVisionModel, CLIPVisionConfig(**spec.arch), {}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        # CLIP's last_hidden_state is the raw output of the last (kept) block.
        tokens = self.model(pixel_values=pixels.flatten(0, 1)).last_hidden_state
        if self.spec.final_norm:
            tokens = self.final_norm(tokens)
        return self.to_grid(tokens, b, pixels.shape[1])
