"""Shared by the transformers backends: module-path lookup, the ViViT/CLIP base class, and
from_pretrained on a local checkpoint with missing keys made fatal."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from torch import nn

from encoders.backbones._base import Backbone, kept_index
from encoders.spec import EncoderSpec


def get_path(obj: Any, paths: tuple[str, ...]) -> tuple[Any, str]:
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
            self.model = hf_from_local(cls, source, spec, config=config, **extra)
        holder, attr = get_path(self.model, self.BLOCKS)
        blocks = getattr(holder, attr)
        self.index = kept_index(spec.layer, len(blocks))
        setattr(holder, attr, blocks[: self.index + 1])
        holder, attr = get_path(self.model, self.FINAL_NORM)
        self.final_norm = getattr(holder, attr)

    def model_class(self, spec: EncoderSpec) -> tuple[type, Any, dict[str, Any]]:
        raise NotImplementedError


def hf_from_local(
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
