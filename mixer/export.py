"""Export projectors + fusion in the reference MERV key layout (`projectors.*`, `feature_fusion.*`).

The reference loads these with `vidlm.projectors.load_state_dict(sd["projectors"])` and
`vidlm.feature_fusion.load_state_dict(sd["feature_fusion"])`, so the result is split the same way.
It only drops into the reference when d_model equals the LLM width (4096 for Llama-2-7B) and the
attention width is 3072.

Projectors: the released MERV configs (`merv-base` "no-align+3davg+linear", `merv-full`
"3davg+linear", princetonvisualai/merv `merv/conf/models.py`) wrap each projector in an
`AveragePooling3DProjector` (an AdaptiveAvgPool3d, no parameters) that holds the Linear / gelu-mlp
projector at its own `projector` attribute. Our pooling happens at read time, so our projector is
that inner module and its keys gain one `projector.` level:
`{i}.projector.weight` -> `{i}.projector.projector.weight` (gelu-mlp: `{i}.projector.projector.0.*`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .model import MervMixer

# Our fusion registry name -> the reference `feature_fusion` string.
REFERENCE_FUSION_NAME = {
    "cross_attention": "cross_attention_avg_lq",
    "static_weights": "scalar",
    "channel_concat": "concat_channel",
    "sequence_concat": "concat",
}


def _cross_attention_keys(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    a, d = sd["k_proj.weight"].shape
    zeros_bias = torch.zeros(a, dtype=sd["q_proj.bias"].dtype)
    # v_proj and out_proj exist in the reference's nn.MultiheadAttention but only its attention
    # weights are used, so their values never affect the output: write zeros.
    return {
        "Q": sd["query"],
        "attention.q_proj_weight": sd["q_proj.weight"],
        "attention.k_proj_weight": sd["k_proj.weight"],
        "attention.v_proj_weight": torch.zeros(a, d, dtype=sd["k_proj.weight"].dtype),
        "attention.in_proj_bias": torch.cat([sd["q_proj.bias"], sd["k_proj.bias"], zeros_bias]),
        "attention.out_proj.weight": torch.zeros(a, a, dtype=sd["q_proj.weight"].dtype),
        "attention.out_proj.bias": zeros_bias.clone(),
    }


def to_reference_state_dict(model: MervMixer) -> dict[str, dict[str, Tensor]]:
    """{"projectors": {...}, "feature_fusion": {...}} with the reference's parameter names."""
    # "{i}.<rest>" -> "{i}.projector.<rest>": the 3davg wrapper around each reference projector.
    projectors = {}
    for key, value in model.projectors.state_dict().items():
        index, rest = key.split(".", 1)
        projectors[f"{index}.projector.{rest}"] = value.detach().cpu()
    fusion_sd = {k: v.detach().cpu() for k, v in model.feature_fusion.state_dict().items()}
    if model.spec.fusion == "cross_attention":
        fusion = _cross_attention_keys(fusion_sd)
    elif model.spec.fusion in REFERENCE_FUSION_NAME:
        fusion = fusion_sd  # static_weights (`scalar`), channel_concat (`projector.*`): same names
    else:
        raise ValueError(f"no reference layout for fusion {model.spec.fusion!r}")
    return {"projectors": projectors, "feature_fusion": fusion}
