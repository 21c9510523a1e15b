"""MERV's cross-attentive mixer followed by a learned mix over time ("cross_attention_time_mix").

MERV's mixer weighs whole encoders and never looks across frames: in the paper, motion reaches
the language model through the video encoders' own tokens (ViViT, LanguageBind) and a 7B model
compares frames itself. Where neither holds (random-initialised encoders whose tokens carry no
motion, a tiny language model), "moves left" and "moves right" are the same set of tokens in a
different order, and a per-token projector cannot tell them apart. This fusion adds one
[T, T] matrix after the mixer: each grid cell's token at step t gains sum_s M[t, s] * token at
step s, so "later minus earlier" is one linear map away. M starts at zero, so an untrained
fusion is exactly MERV's mixer (same weights, same output). Not a reference fusion: `merv
export --format merv` refuses it.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .fusions import CrossAttentionMixer, FusionOutput, register_fusion


@register_fusion("cross_attention_time_mix")
class TimeMixedCrossAttention(nn.Module):
    """Options: ``attn_dim`` (the mixer's, 3072 as MERV), ``time_steps`` (16, the store's;
    set it to the pooled count with ``pool_time``)."""

    def __init__(
        self, num_encoders: int, d_model: int, attn_dim: int = 3072, time_steps: int = 16
    ) -> None:
        super().__init__()
        self.mixer = CrossAttentionMixer(num_encoders, d_model, attn_dim)
        self.time_steps = time_steps
        self.time_mix = nn.Parameter(torch.zeros(time_steps, time_steps))

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def forward(self, xs: Sequence[Tensor]) -> FusionOutput:
        fused, weights = self.mixer(xs)
        b, n, d = fused.shape
        t = self.time_steps
        if n % t:
            raise ValueError(
                f"cross_attention_time_mix built for {t} time steps got {n} tokens: set "
                "fusion_options.time_steps to the steps read (pool_time)"
            )
        steps = fused.reshape(b, t, n // t, d)  # tokens are stored time-major
        mixed = steps + torch.einsum("ts,bscd->btcd", self.time_mix, steps)
        return mixed.reshape(b, n, d), weights
