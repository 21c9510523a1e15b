"""Per-encoder projectors: [..., C_e] -> [..., d].

Reference layout (princetonvisualai/merv, `merv/util/nn_utils.py`): `MERV.projectors` is a
ModuleList with one projector per encoder, in encoder order. Each projector keeps its layers in an
attribute named `projector` (the optional pre-projection LayerNorm is an Identity by default and
has no parameters), so the state-dict keys are

- `LinearProjector`: `projectors.{i}.projector.weight` [d, C_e], `projectors.{i}.projector.bias` [d]
- `MLPProjector` ("gelu-mlp"): `projectors.{i}.projector.0.{weight,bias}` (C_e -> d) and
  `projectors.{i}.projector.2.{weight,bias}` (d -> d), GELU between.

Our modules use the same attribute names, so the reference's bare Linear / gelu-mlp projectors
take our keys as they are. The released MERV configs wrap each one in a 3davg pooling projector,
one `projector.` level deeper; `mixer.export` adds that level.
"""

from __future__ import annotations

from torch import Tensor, nn

from .registry import Registry

PROJECTORS = Registry("projector")
register_projector = PROJECTORS.register


@register_projector("linear")
class LinearProjector(nn.Module):
    """One Linear(C_e -> d, bias=True), applied to every token (the MERV default)."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.projector = nn.Linear(in_dim, out_dim, bias=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(x)


@register_projector("mlp")
class MLPProjector(nn.Module):
    """Linear(C_e -> d), GELU, Linear(d -> d): the reference's "gelu-mlp"."""

    def __init__(self, in_dim: int, out_dim: int) -> None:
        super().__init__()
        self.projector = nn.Sequential(
            nn.Linear(in_dim, out_dim, bias=True),
            nn.GELU(),
            nn.Linear(out_dim, out_dim, bias=True),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.projector(x)
