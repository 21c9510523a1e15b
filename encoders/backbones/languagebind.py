"""Backend `languagebind`: the in-house LanguageBind video tower (`encoders.languagebind`)."""

from __future__ import annotations

from pathlib import Path

import torch

from encoders.backbones import register_backbone
from encoders.backbones._base import Backbone, check_load, kept_index, read_state_dict
from encoders.languagebind import (
    LanguageBindVisionConfig,
    LanguageBindVisionTransformer,
    adapt_languagebind_state_dict,
)
from encoders.spec import EncoderSpec


@register_backbone("languagebind")
class LanguageBindBackbone(Backbone):
    def __init__(self, spec: EncoderSpec, source: Path | None) -> None:
        super().__init__(spec)
        self.vision_model = LanguageBindVisionTransformer(
            LanguageBindVisionConfig.from_kwargs(spec.arch)
        )
        if source is None:
            self.vision_model.init_weights()
        else:
            sd = adapt_languagebind_state_dict(read_state_dict(source))
            res = self.vision_model.load_state_dict(sd, strict=False)
            check_load(spec.name, res.missing_keys, res.unexpected_keys, ())
        self.index = kept_index(spec.layer, len(self.vision_model.encoder.layers))
        self.vision_model.truncate(self.index)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        tokens = self.vision_model(pixels.flatten(0, 1), layer=-1, final_norm=self.spec.final_norm)
        return self.to_grid(tokens, b, pixels.shape[1])
