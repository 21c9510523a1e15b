"""Fusion modules: a list of E projected token sequences [B, N, d] -> fused tokens.

Every fusion returns `(tokens, weights)`: tokens [B, N', d] and, for the weighting fusions, the
per-video encoder weights [B, E] (None otherwise). `out_tokens(N)` gives N' so a head can be sized.
A factory is called as `factory(num_encoders, d_model, **fusion_options)`.

Reference layout (princetonvisualai/merv, `merv/util/nn_utils.py` and `merv/models/vidlms/merv.py`;
the module lives at `MERV.feature_fusion`):

- "cross_attention_avg_lq" (the paper's cross-attentive mixer) is `CrossAttentionAdapterLearnableQuery`
  with `averagetoken=True`, built with embed_dim=3072 and kdim=vdim=d_llm. Its keys are
  `Q` [1, 3072] and an `nn.MultiheadAttention(3072, num_heads=1)` named `attention`:
  `attention.q_proj_weight` [3072, 3072], `attention.k_proj_weight` [3072, d],
  `attention.v_proj_weight` [3072, d], `attention.in_proj_bias` [3*3072] (q | k | v),
  `attention.out_proj.weight` [3072, 3072], `attention.out_proj.bias` [3072]. Only the attention
  *weights* are used, so v_proj and out_proj never receive gradient; Q and the three projection
  weights are xavier-uniform initialised and the biases zero.
- "scalar" is `ScalarAdapter`: `scalar` [E] (randn at init), softmax over encoders.
- "concat_channel" is a `LinearProjector(E*d, d)`: `projector.weight` [d, E*d], `projector.bias` [d].
- "concat" (sequence concatenation) has no parameters.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from .registry import Registry

FUSIONS = Registry("fusion")
register_fusion = FUSIONS.register

FusionOutput = tuple[Tensor, "Tensor | None"]


def _check_inputs(xs: Sequence[Tensor], num_encoders: int) -> None:
    if len(xs) != num_encoders:
        raise ValueError(f"fusion built for {num_encoders} encoders got {len(xs)} inputs")
    shapes = {tuple(x.shape) for x in xs}
    if len(shapes) != 1:
        raise ValueError(
            f"all projected encoder tokens must share one shape [B, N, d], got {shapes}"
        )


def weighted_sum(xs: Sequence[Tensor], weights: Tensor) -> Tensor:
    """sum_e weights[:, e] * xs[e]; accumulates instead of stacking to keep peak memory at 2x."""
    out = xs[0] * weights[:, 0, None, None]
    for e in range(1, len(xs)):
        out = out + xs[e] * weights[:, e, None, None]
    return out


@register_fusion("cross_attention")
class CrossAttentionMixer(nn.Module):
    """MERV's cross-attentive mixer: one scalar weight per encoder per video.

    w = softmax_e((Q Wq + bq) . (m_e Wk + bk) / sqrt(attn_dim)), m_e = mean token of encoder e;
    output = sum_e w_e x_e. No value/output projection, residual or norm. Parameter names map to
    the reference as: `query` -> `Q`, `q_proj.weight` -> `attention.q_proj_weight`,
    `k_proj.weight` -> `attention.k_proj_weight`, `cat(q_proj.bias, k_proj.bias, 0)` ->
    `attention.in_proj_bias` (see `mixer.export`).
    """

    def __init__(self, num_encoders: int, d_model: int, attn_dim: int = 3072) -> None:
        super().__init__()
        self.num_encoders = num_encoders
        self.attn_dim = attn_dim
        self.scale = 1.0 / math.sqrt(attn_dim)
        self.query = nn.Parameter(torch.empty(1, attn_dim))
        self.q_proj = nn.Linear(attn_dim, attn_dim, bias=True)
        self.k_proj = nn.Linear(d_model, attn_dim, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Same scheme as the reference (xavier weights, zero biases): the logits start tiny, so
        # the weights start near uniform.
        for p in (self.query, self.q_proj.weight, self.k_proj.weight):
            nn.init.xavier_uniform_(p)
        nn.init.zeros_(self.q_proj.bias)
        nn.init.zeros_(self.k_proj.bias)

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def encoder_weights(self, xs: Sequence[Tensor]) -> Tensor:
        summaries = torch.stack([x.mean(dim=1) for x in xs], dim=1)  # [B, E, d]
        q = self.q_proj(self.query)  # [1, A]
        k = self.k_proj(summaries)  # [B, E, A]
        logits = (k @ q.transpose(0, 1)).squeeze(-1) * self.scale  # [B, E]
        return logits.softmax(dim=-1)

    def forward(self, xs: Sequence[Tensor]) -> FusionOutput:
        _check_inputs(xs, self.num_encoders)
        w = self.encoder_weights(xs)
        return weighted_sum(xs, w), w


@register_fusion("static_weights")
class StaticWeights(nn.Module):
    """Input-independent learned softmax weights per encoder (reference `scalar`).

    Starts at zeros (exactly uniform) rather than the reference's randn, so runs do not start from
    a random encoder preference; pass init="randn" to match the reference.
    """

    def __init__(self, num_encoders: int, d_model: int, init: str = "zeros") -> None:
        super().__init__()
        if init not in ("zeros", "randn"):
            raise ValueError(f"static_weights init must be 'zeros' or 'randn', got {init!r}")
        self.num_encoders = num_encoders
        fill = torch.zeros if init == "zeros" else torch.randn
        self.scalar = nn.Parameter(fill(num_encoders))

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def forward(self, xs: Sequence[Tensor]) -> FusionOutput:
        _check_inputs(xs, self.num_encoders)
        w = self.scalar.softmax(dim=0).expand(xs[0].shape[0], -1)
        return weighted_sum(xs, w), w


@register_fusion("channel_concat")
class ChannelConcat(nn.Module):
    """Concatenate encoders along channels, then Linear(E*d -> d) (reference `concat_channel`)."""

    def __init__(self, num_encoders: int, d_model: int) -> None:
        super().__init__()
        self.num_encoders = num_encoders
        self.projector = nn.Linear(num_encoders * d_model, d_model, bias=True)

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens

    def forward(self, xs: Sequence[Tensor]) -> FusionOutput:
        _check_inputs(xs, self.num_encoders)
        return self.projector(torch.cat(list(xs), dim=-1)), None


@register_fusion("sequence_concat")
class SequenceConcat(nn.Module):
    """Concatenate encoders along the token axis (E*N tokens, reference `concat`); no parameters."""

    def __init__(self, num_encoders: int, d_model: int) -> None:
        super().__init__()
        self.num_encoders = num_encoders

    def out_tokens(self, n_tokens: int) -> int:
        return n_tokens * self.num_encoders

    def forward(self, xs: Sequence[Tensor]) -> FusionOutput:
        _check_inputs(xs, self.num_encoders)
        return torch.cat(list(xs), dim=1), None


# A distilled student's adapters (`merv distill`), loaded when a config names them.
FUSIONS.register_module("mlp_adapter", "mixer.adapters")
FUSIONS.register_module("temporal_adapter", "mixer.adapters")
# MERV's mixer then a learned mix over time steps (tiny LMs and encoders without motion).
FUSIONS.register_module("cross_attention_time_mix", "mixer.time_mix")
