"""A distilled student's adapters: fusions that map few encoders' tokens to a teacher's fused
tokens (``merv distill``).

They are fusions (``factory(num_encoders, d_model, **fusion_options)``, E projected sequences
[B, N, d] in, [B, N, d] out, no encoder weights), so a student is an ordinary `MervMixer`:
its encoders' projectors, then an adapter in place of the mixer, then its teacher's head.

- "mlp_adapter": one MLP per token over the concatenated channels of the student's encoders
  (option ``hidden``: its width, default max(256, d_model)).
- "temporal_adapter": the same first layer, then a small transformer over the time steps of
  each grid cell (a learned position per step), so a student can recover what the teacher's
  temporal encoders (ViViT, LanguageBind) saw across frames.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .fusions import _check_inputs, register_fusion


@register_fusion("mlp_adapter")
class MlpAdapter(nn.Module):
    def __init__(self, num_encoders: int, d_model: int, hidden: int | None = None) -> None:
        super().__init__()
        self.num_encoders = num_encoders
        hidden = hidden or max(256, d_model)  # never narrower than the tokens it makes
        self.inner = nn.Linear(num_encoders * d_model, hidden)
        self.outer = nn.Linear(hidden, d_model)

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, None]:
        _check_inputs(xs, self.num_encoders)
        return self.outer(F.gelu(self.inner(torch.cat(list(xs), dim=-1)))), None


@register_fusion("temporal_adapter")
class TemporalAdapter(nn.Module):
    """Options: ``time_steps`` (set by `merv distill` from the data), ``hidden`` (256),
    ``layers`` (2), ``heads`` (4)."""

    def __init__(
        self,
        num_encoders: int,
        d_model: int,
        time_steps: int = 16,
        hidden: int = 256,
        layers: int = 2,
        heads: int = 4,
    ) -> None:
        super().__init__()
        if hidden % heads:
            raise ValueError(
                f"temporal_adapter: hidden {hidden} must be divisible by heads {heads}"
            )
        self.num_encoders, self.time_steps = num_encoders, time_steps
        self.inner = nn.Linear(num_encoders * d_model, hidden)
        self.position = nn.Parameter(torch.zeros(time_steps, hidden))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(
            hidden, heads, dim_feedforward=2 * hidden, dropout=0.0, batch_first=True,
            norm_first=True,
        )  # fmt: skip
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.outer = nn.Linear(hidden, d_model)

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def forward(self, xs: Sequence[Tensor]) -> tuple[Tensor, None]:
        _check_inputs(xs, self.num_encoders)
        b, n, _ = xs[0].shape
        t = self.time_steps
        if n % t:
            raise ValueError(f"temporal_adapter built for {t} time steps got {n} tokens")
        h = self.inner(torch.cat(list(xs), dim=-1))  # [B, T*P, h], time-major as stored
        cells = n // t
        h = h.reshape(b, t, cells, -1).transpose(1, 2).reshape(b * cells, t, -1)
        h = self.blocks(h + self.position)  # attention over the time steps of one cell
        h = h.reshape(b, cells, t, -1).transpose(1, 2).reshape(b, n, -1)
        return self.outer(h), None
