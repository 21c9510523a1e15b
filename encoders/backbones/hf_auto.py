"""Backend `hf_auto`: any ViT-style transformers vision model (AutoModel), e.g. from a config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from encoders.backbones import register_backbone
from encoders.backbones._base import Backbone, kept_index
from encoders.backbones._hf import get_path, hf_from_local
from encoders.spec import EncoderSpec


def hf_auto_config(arch: dict[str, Any], source: Path | None) -> Any:
    """transformers config of an `hf_auto` encoder: `arch.model_type` plus values, or the
    checkpoint folder's config.json (arch values override it)."""
    from transformers import AutoConfig

    arch = dict(arch)
    if "model_type" in arch:
        return AutoConfig.for_model(arch.pop("model_type"), **arch)
    if source is None or not source.is_dir():
        raise ValueError(
            "hf_auto needs arch.model_type (and config values) when there is no "
            "checkpoint folder with a config.json"
        )
    return AutoConfig.from_pretrained(str(source), local_files_only=True, **arch)


@register_backbone("hf_auto")
class HFAutoBackbone(Backbone):
    """Any ViT-style transformers vision model (AutoModel), e.g. declared in a config file.

    Image models (time_steps == frames) run per frame; video models (e.g. VideoMAE) take the
    clip. The kept layer is `hidden_states[1:][layer]`; `final_norm` takes `last_hidden_state`
    (after the model's own final norm, where it has one) and needs layer -1. Dual-tower
    checkpoints (CLIP, SigLIP) keep their `vision_model`.
    """

    BLOCKS = ("layers", "encoder.layer", "encoder.layers")

    def __init__(self, spec: EncoderSpec, source: Path | None) -> None:
        super().__init__(spec)
        from transformers import AutoModel

        if spec.final_norm and spec.layer != -1:
            raise ValueError(
                f"encoder '{spec.name}': final_norm (last_hidden_state) needs "
                "layer -1 with backend hf_auto"
            )
        config = hf_auto_config(spec.arch, source)
        if source is None:
            model = AutoModel.from_config(config, attn_implementation="sdpa")
        else:
            model = hf_from_local(AutoModel, source, spec, ("pooler", "head"), config=config)
        self.model = getattr(model, "vision_model", model)
        self.video = spec.time_steps != spec.frames
        try:
            holder, attr = get_path(self.model, self.BLOCKS)
        except AttributeError:  # unknown layout: every block runs
            depth = (getattr(config, "vision_config", None) or config).num_hidden_layers
            self.index = kept_index(spec.layer, depth)
            return
        blocks = getattr(holder, attr)
        self.index = kept_index(spec.layer, len(blocks))
        setattr(holder, attr, blocks[: self.index + 1])

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b, f = pixels.shape[:2]
        x = pixels if self.video else pixels.flatten(0, 1)
        if self.spec.final_norm:
            tokens = self.model(pixel_values=x).last_hidden_state
        else:
            tokens = self.model(pixel_values=x, output_hidden_states=True).hidden_states[
                self.index + 1
            ]
        return self.to_grid(tokens, b, self.spec.time_steps if self.video else f)
