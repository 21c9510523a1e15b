"""EncoderSpec: everything that determines an encoder's cached features.

A spec is pure data. Its fingerprint goes into the feature store, so any change to a field that
alters the features (checkpoint, layer, frames, preprocessing, architecture) changes the
fingerprint and old features can never be silently mixed with new ones.

Layer convention (`layer`): an index into the list of transformer *block outputs*, Python style.
`-1` is the last block's output, `-2` the penultimate block's output, `i >= 0` the output of block
`i` (0-based). The patch-embedding output is not addressable. For transformers models this is
`hidden_states[1:][layer]`, i.e. `hidden_states[-2]` for `layer=-2`. `final_norm=True` applies the
model's own final norm (timm `norm`, ViViT `layernorm`, CLIP `post_layernorm`) on top.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from encoders.backbones import BACKENDS
from pipeline.config import from_mapping
from pipeline.sampling import NUM_SAMPLED_FRAMES

RESIZES = ("squash", "short_side_center_crop")
INTERPOLATIONS = ("bicubic", "bilinear")
# "pil": emulate torchvision transforms on PIL images (antialiased, uint8 rounding).
# "tensor": emulate float-tensor video transforms (plain F.interpolate, no antialias, no rounding),
#           as LanguageBind's reference pipeline does.
RESIZE_IMPLS = ("pil", "tensor")

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
HALF_MEAN = (0.5, 0.5, 0.5)
HALF_STD = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class EncoderSpec:
    name: str
    backend: str
    checkpoint: str  # timm model name, or HF hub id
    width: int  # C of the raw token grid
    grid: tuple[int, int]  # raw (Hg, Wg) patch grid
    prefix_tokens: int  # leading non-patch tokens dropped (CLS, registers)
    revision: str | None = None
    frames: int = 16  # frames fed to the model: every (NUM_SAMPLED_FRAMES // frames)-th sampled one
    time_steps: int = 16  # raw T of the output grid
    image_size: int = 224
    resize: str = "squash"
    interpolation: str = "bicubic"
    resize_impl: str = "pil"
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    layer: int = -2
    final_norm: bool = False
    arch: dict[str, Any] = field(default_factory=dict)  # model config kwargs (tiny variants)
    tiny: bool = False  # tiny specs are always random-initialised with a fingerprint seed

    def __post_init__(self) -> None:
        # Normalise JSON-ish input (lists) so from_dict(to_dict()) round-trips exactly.
        object.__setattr__(self, "grid", tuple(int(x) for x in self.grid))
        object.__setattr__(self, "mean", tuple(float(x) for x in self.mean))
        object.__setattr__(self, "std", tuple(float(x) for x in self.std))
        object.__setattr__(self, "arch", _plain(dict(self.arch)))
        problems = []
        if not self.name or "," in self.name or "=" in self.name:
            problems.append(f"bad name {self.name!r}")
        if self.backend not in BACKENDS:
            problems.append(f"backend {self.backend!r} not in {BACKENDS}")
        if self.resize not in RESIZES:
            problems.append(f"resize {self.resize!r} not in {RESIZES}")
        if self.interpolation not in INTERPOLATIONS:
            problems.append(f"interpolation {self.interpolation!r} not in {INTERPOLATIONS}")
        if self.resize_impl not in RESIZE_IMPLS:
            problems.append(f"resize_impl {self.resize_impl!r} not in {RESIZE_IMPLS}")
        if self.frames <= 0 or NUM_SAMPLED_FRAMES % self.frames:
            problems.append(f"frames={self.frames} must divide {NUM_SAMPLED_FRAMES}")
        if len(self.grid) != 2 or len(self.mean) != 3 or len(self.std) != 3:
            problems.append("grid needs 2 values, mean/std need 3")
        if problems:
            raise ValueError(f"invalid EncoderSpec {self.name!r}: " + "; ".join(problems))

    @property
    def frame_stride(self) -> int:
        return NUM_SAMPLED_FRAMES // self.frames

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        """Raw token grid per video: (T, Hg, Wg, C)."""
        return (self.time_steps, self.grid[0], self.grid[1], self.width)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dict of every field (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "EncoderSpec") -> EncoderSpec:
        """A spec from its fields (a `to_dict` result, a config entry) through the one config
        loader: values coerced to the fields' types (lists -> tuples), unknown fields refused
        with the list of known ones (`pipeline.config.ConfigError`, a ValueError)."""
        return from_mapping(cls, data, source)

    def fingerprint(self) -> str:
        """Short sha256 of the canonical JSON of all fields; stable across processes."""
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode("utf-8")).hexdigest()[:16]

    def replace(self, **changes: Any) -> EncoderSpec:
        return dataclasses.replace(self, **changes)

    def __hash__(self) -> int:  # arch is a dict, so the generated hash would fail
        return hash(self.fingerprint())


def _plain(value: Any) -> Any:
    """Deep-convert tuples to lists so arch compares equal before and after a JSON round trip."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
