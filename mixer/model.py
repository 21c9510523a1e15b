"""The trainable model: per-encoder projectors -> fusion -> objective head.

Attribute names follow the reference `MERV` module (`projectors`, `feature_fusion`); the state
dict of the first two reaches the reference layout through `mixer.export` (one more `projector.`
level for the reference's 3davg wrapper, the cross-attention's own names); `head` is ours (the
reference feeds the fused tokens to the LLM instead).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any

from torch import Tensor, nn

from pipeline.config import from_mapping

from .fusions import FUSIONS
from .objectives import OBJECTIVES
from .projectors import PROJECTORS

if TYPE_CHECKING:
    from .config import TrainConfig
    from .inmemory import FeatureData


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to rebuild the model; stored in the checkpoint's metadata."""

    encoders: list[str]
    widths: list[int]
    time_steps: int
    tokens_per_step: int
    num_classes: int
    d_model: int
    projector: str = "linear"
    fusion: str = "cross_attention"
    objective: str = "probe"
    projector_options: dict[str, Any] = field(default_factory=dict)
    fusion_options: dict[str, Any] = field(default_factory=dict)
    objective_options: dict[str, Any] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)

    @property
    def n_tokens(self) -> int:
        return self.time_steps * self.tokens_per_step

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "ModelSpec") -> ModelSpec:
        """From `to_dict()`'s mapping (e.g. a checkpoint's metadata), through the one loader."""
        return from_mapping(cls, d, source=source)

    @classmethod
    def from_train_config(cls, config: TrainConfig, data: FeatureData) -> ModelSpec:
        """The spec for `data` under `config`.

        The data decides the encoders, widths, token layout and classes; every other field is
        the config field of the same name, so a model option is declared in `ModelSpec` and
        `TrainConfig` and never copied by hand.
        """
        from_data = {
            "encoders": data.encoders,
            "widths": data.widths,
            "time_steps": data.time_steps,
            "tokens_per_step": data.grid * data.grid,
            "num_classes": len(data.classes),
            "classes": data.classes,
        }
        from_config = {
            f.name: copy.copy(getattr(config, f.name))  # the options dicts are not shared
            for f in fields(cls)
            if f.name not in from_data
        }
        return cls(**from_data, **from_config)


class MervMixer(nn.Module):
    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        if len(spec.encoders) != len(spec.widths) or not spec.encoders:
            raise ValueError(f"need one width per encoder, got {spec.encoders} / {spec.widths}")
        self.spec = spec
        self.projectors = nn.ModuleList(
            PROJECTORS.build(spec.projector, w, spec.d_model, **spec.projector_options)
            for w in spec.widths
        )
        self.feature_fusion = FUSIONS.build(
            spec.fusion, len(spec.encoders), spec.d_model, **spec.fusion_options
        )
        self.head = OBJECTIVES.build(
            spec.objective,
            d_model=spec.d_model,
            n_tokens=self.feature_fusion.out_tokens(spec.n_tokens),
            num_classes=spec.num_classes,
            **spec.objective_options,
        )

    def fuse(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        """features[e]: [B, T, G*G, C_e] (or already flat [B, N, C_e]) -> fused [B, N', d]."""
        if len(features) != len(self.projectors):
            raise ValueError(
                f"model has {len(self.projectors)} encoders, got {len(features)} inputs"
            )
        projected = [p(x.flatten(1, -2)) for p, x in zip(self.projectors, features, strict=True)]
        return self.feature_fusion(projected)

    def forward(self, features: Sequence[Tensor]) -> tuple[Tensor, Tensor | None]:
        """Returns (head output, per-encoder weights [B, E] or None)."""
        tokens, weights = self.fuse(features)
        return self.head(tokens), weights

    def param_counts(self) -> dict[str, int]:
        def count(m: nn.Module) -> int:
            return sum(p.numel() for p in m.parameters())

        counts = {
            "projectors": count(self.projectors),
            "fusion": count(self.feature_fusion),
            "head": count(self.head),
        }
        counts["total"] = sum(counts.values())
        return counts


def build_model(spec: ModelSpec) -> MervMixer:
    return MervMixer(spec)
