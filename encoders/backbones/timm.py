"""Backend `timm`: any ViT-style timm model, its kept block taken with forward_intermediates."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from encoders.backbones import register_backbone
from encoders.backbones._base import Backbone, check_load, kept_index, read_state_dict
from encoders.spec import EncoderSpec


@register_backbone("timm")
class TimmBackbone(Backbone):
    def __init__(self, spec: EncoderSpec, source: Path | None) -> None:
        super().__init__(spec)
        import timm

        self.model = timm.create_model(
            spec.checkpoint, pretrained=False, img_size=spec.image_size, num_classes=0, **spec.arch
        )
        if getattr(self.model, "num_prefix_tokens", spec.prefix_tokens) != spec.prefix_tokens:
            raise ValueError(
                f"spec '{spec.name}' says {spec.prefix_tokens} prefix tokens, "
                f"model has {self.model.num_prefix_tokens}"
            )
        if source is not None:
            self._load(read_state_dict(source))
        self.index = kept_index(spec.layer, len(self.model.blocks))
        self.model.prune_intermediate_layers(
            [self.index], prune_norm=not spec.final_norm, prune_head=True
        )

    def _load(self, sd: dict[str, torch.Tensor]) -> None:
        # timm's own per-model filter converts original-format checkpoints and resamples the
        # position embedding (e.g. DINOv2's 37x37 grid -> 16x16 at img_size 224).
        filt = getattr(sys.modules[type(self.model).__module__], "checkpoint_filter_fn", None)
        if filt is not None:
            sd = filt(sd, self.model)
        res = self.model.load_state_dict(sd, strict=False)
        check_load(self.spec.name, res.missing_keys, res.unexpected_keys, ("head.",))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        feats = self.model.forward_intermediates(
            pixels.flatten(0, 1),
            indices=[self.index],
            norm=self.spec.final_norm,
            output_fmt="NCHW",
            intermediates_only=True,
        )[0]  # prefix tokens already split off by timm
        tokens = feats.flatten(2).transpose(1, 2)  # [B*F, Hg*Wg, C]
        return self.to_grid(tokens, b, pixels.shape[1], prefix=0)
