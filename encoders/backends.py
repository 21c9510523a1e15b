"""Model backends: build an architecture from a spec, load weights, return raw token grids.

Every backend maps pixels [B, F, 3, S, S] -> raw token grid [B, T, Hg, Wg, C] for the spec's
kept layer, prefix tokens dropped. Blocks after the kept layer are removed after loading, so they
cost neither time nor memory.

`source` is None for a random architecture, or a local path (file or directory) to load from.
"""

from __future__ import annotations

import math
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from encoders.languagebind import (
    LanguageBindVisionConfig,
    LanguageBindVisionTransformer,
    adapt_languagebind_state_dict,
)
from encoders.spec import EncoderSpec
from encoders.weights import read_state_dict


def _kept_index(layer: int, depth: int) -> int:
    if not -depth <= layer < depth:
        raise ValueError(f"layer {layer} out of range for a {depth}-block model")
    return layer % depth


def _check_load(
    name: str, missing: list[str], unexpected: list[str], ignore: tuple[str, ...]
) -> None:
    unexpected = [k for k in unexpected if not k.startswith(ignore)]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit encoder '{name}': missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
        )


class Backbone(nn.Module):
    """Common output handling: drop prefix tokens, check and reshape to [B, T, Hg, Wg, C]."""

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec

    def to_grid(
        self, tokens: torch.Tensor, batch: int, time: int, prefix: int | None = None
    ) -> torch.Tensor:
        """tokens [B * T, prefix + Hg * Wg, C] or [B, prefix + T * Hg * Wg, C] -> grid."""
        s = self.spec
        tokens = tokens[:, s.prefix_tokens if prefix is None else prefix :]
        shape = (batch, time, s.grid[0], s.grid[1], s.width)
        if tokens.numel() != math.prod(shape):
            raise RuntimeError(
                f"encoder '{s.name}' produced {tuple(tokens.shape)}, which does not fit "
                f"{shape}; check the spec's grid/width/prefix_tokens"
            )
        return tokens.reshape(shape)


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
        self.index = _kept_index(spec.layer, len(self.model.blocks))
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
        _check_load(self.spec.name, res.missing_keys, res.unexpected_keys, ("head.",))

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


def _get_path(obj: Any, paths: tuple[str, ...]) -> tuple[Any, str]:
    """(holder, attribute) for the first dotted path that exists on `obj`.

    Module layouts differ across transformers versions (e.g. v5 flattened `vision_model`).
    """
    for path in paths:
        *parents, attr = path.split(".")
        holder = obj
        try:
            for part in parents:
                holder = getattr(holder, part)
            getattr(holder, attr)
        except AttributeError:
            continue
        return holder, attr
    raise AttributeError(f"none of {paths} on {type(obj).__name__}")


class HFBackbone(Backbone):
    """transformers ViViT or CLIP vision model, loaded with from_pretrained (it renames keys)."""

    BLOCKS: tuple[str, ...] = ()
    FINAL_NORM: tuple[str, ...] = ()

    def __init__(self, spec: EncoderSpec, source: Path | None) -> None:
        super().__init__(spec)
        cls, config, extra = self.model_class(spec)
        if source is None:
            self.model = cls(config, **extra)
        else:
            self.model = _hf_from_local(cls, source, spec, config=config, **extra)
        holder, attr = _get_path(self.model, self.BLOCKS)
        blocks = getattr(holder, attr)
        self.index = _kept_index(spec.layer, len(blocks))
        setattr(holder, attr, blocks[: self.index + 1])
        holder, attr = _get_path(self.model, self.FINAL_NORM)
        self.final_norm = getattr(holder, attr)

    def model_class(self, spec: EncoderSpec) -> tuple[type, Any, dict[str, Any]]:
        raise NotImplementedError


def _hf_from_local(
    cls: Any, source: Path, spec: EncoderSpec, unused: tuple[str, ...] = (), **kwargs: Any
) -> nn.Module:
    """from_pretrained on a local dir or file; it maps checkpoint key layouts (e.g. a CLIPModel or
    VivitForVideoClassification checkpoint into the bare vision model). Missing keys are fatal:
    transformers would otherwise silently leave them randomly initialised. Keys under a module
    named in `unused` (poolers, heads that never touch the kept tokens) may be missing."""
    common = dict(
        local_files_only=True,
        weights_only=True,
        attn_implementation="sdpa",
        output_loading_info=True,
        **kwargs,
    )
    if source.is_dir():
        model, info = cls.from_pretrained(str(source), **common)
    else:  # a single file: give from_pretrained a directory holding it under the standard name
        name = "model.safetensors" if source.suffix == ".safetensors" else "pytorch_model.bin"
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / name).symlink_to(source.resolve())
            model, info = cls.from_pretrained(tmp, **common)
    missing = [
        k
        for k in info.get("missing_keys", ())
        if not k.endswith("position_ids") and not set(k.split(".")) & set(unused)
    ]
    bad = list(info.get("mismatched_keys", ()))
    if missing or bad:
        raise ValueError(
            f"checkpoint does not fit encoder '{spec.name}': missing {missing[:5]} "
            f"({len(missing)}), mismatched {bad[:3]}"
        )
    return model


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
            model = _hf_from_local(AutoModel, source, spec, ("pooler", "head"), config=config)
        self.model = getattr(model, "vision_model", model)
        self.video = spec.time_steps != spec.frames
        try:
            holder, attr = _get_path(self.model, self.BLOCKS)
        except AttributeError:  # unknown layout: every block runs
            depth = (getattr(config, "vision_config", None) or config).num_hidden_layers
            self.index = _kept_index(spec.layer, depth)
            return
        blocks = getattr(holder, attr)
        self.index = _kept_index(spec.layer, len(blocks))
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
            _check_load(spec.name, res.missing_keys, res.unexpected_keys, ())
        self.index = _kept_index(spec.layer, len(self.vision_model.encoder.layers))
        self.vision_model.truncate(self.index)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        b = pixels.shape[0]
        tokens = self.vision_model(pixels.flatten(0, 1), layer=-1, final_norm=self.spec.final_norm)
        return self.to_grid(tokens, b, pixels.shape[1])


BACKBONES: dict[str, type[Backbone]] = {
    "timm": TimmBackbone,
    "hf_vivit": VivitBackbone,
    "hf_clip": ClipBackbone,
    "languagebind": LanguageBindBackbone,
    "hf_auto": HFAutoBackbone,
}
