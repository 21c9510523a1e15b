"""Backend `hf_vivit`: transformers ViViT, the whole clip in, tubelets of 2 frames out."""

from __future__ import annotations

from typing import Any

import torch

from encoders.backbones import register_backbone
from encoders.backbones._hf import HFBackbone
from encoders.spec import EncoderSpec


@register_backbone("hf_vivit")
class VivitBackbone(HFBackbone):
    BLOCKS = ("layers", "encoder.layer")
    FINAL_NORM = ("layernorm",)

    def model_class(self, spec: EncoderSpec) -> tuple[type, Any, dict[str, Any]]:
        from transformers import VivitConfig, VivitModel

        return VivitModel, VivitConfig(**spec.arch), {"add_pooling_layer": False}

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        if self.spec.final_norm:  # ViViT's last_hidden_state is after its final LayerNorm
            tokens = self.model(pixel_values=pixels).last_hidden_state
        else:
            tokens = self.model(pixel_values=pixels, output_hidden_states=True).hidden_states[-1]
        # Tokens are ordered (t, h, w) after the CLS token; a tubelet spans tubelet_size[0] frames.
        return self.to_grid(tokens, b, pixels.shape[1] // self.model.config.tubelet_size[0])
