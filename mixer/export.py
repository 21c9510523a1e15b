"""Projectors + fusion in the reference MERV key layout (`projectors.*`, `feature_fusion.*`):
export to the reference's checkpoint file, and import such a file back.

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

from pathlib import Path

import torch
from torch import Tensor

from .model import MervMixer, ModelSpec

# The reference's encoder order (merv/conf/models.py, merv-base `video_backbone_ids`):
# languagebind, dinov2, vivit, siglip. Its loaders index projectors by position.
REFERENCE_ORDER = ("languagebind", "dinov2", "vivit", "siglip")

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


def _base_name(encoder: str) -> str:
    return encoder.removesuffix("-tiny")  # the tiny test variants stand for their encoder


def check_reference_layout(spec: ModelSpec) -> None:
    """Refuse what the reference could not load: another encoder order or set, or a fusion
    the reference does not have."""
    bases = tuple(_base_name(e) for e in spec.encoders)
    if bases != REFERENCE_ORDER:
        raise ValueError(
            f"encoders {spec.encoders} are not the reference's {list(REFERENCE_ORDER)} in that "
            "order: its loaders index projectors by position; train with --encoders "
            + ",".join(REFERENCE_ORDER)
        )
    if spec.fusion != "cross_attention":
        raise ValueError(
            f"fusion {spec.fusion!r} is not MERV's cross-attentive mixer "
            "(cross_attention_avg_lq), the only fusion the released configs load"
        )


def save_reference_checkpoint(model: MervMixer, path: str | Path) -> Path:
    """The reference's checkpoint file: torch.save({"model": {"projectors", "feature_fusion"}}),
    which its ``from_pretrained`` / ``load_from_checkpoint`` read."""
    check_reference_layout(model.spec)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": to_reference_state_dict(model)}, path)
    return path


def load_reference_checkpoint(
    path: str | Path,
    encoders: list[str] | None = None,
    time_steps: int = 16,
    tokens_per_step: int = 64,
    objective: str = "lm",
    objective_options: dict | None = None,
) -> MervMixer:
    """A model from a reference checkpoint's projectors and cross-attention mixer (read with
    ``weights_only=True``: tensors and containers only, no code). Widths, d_model and the
    mixer width come from the weights' shapes; ``encoders`` name them in reference order."""
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model_sd = sd.get("model", sd) if isinstance(sd, dict) else None
    if not isinstance(model_sd, dict) or "projectors" not in model_sd:
        raise ValueError(f"{path} is not a MERV checkpoint: no model.projectors")
    if "feature_fusion" not in model_sd or "Q" not in model_sd["feature_fusion"]:
        raise ValueError(f"{path}: no cross-attention feature_fusion (Q, attention.*) to import")
    projectors = model_sd["projectors"]
    count = len({k.split(".", 1)[0] for k in projectors})
    names = list(encoders or REFERENCE_ORDER)
    if len(names) != count:
        raise ValueError(f"{path} has {count} projectors; {len(names)} encoder names given")
    widths = [int(projectors[f"{i}.projector.projector.weight"].shape[1]) for i in range(count)]
    fusion = model_sd["feature_fusion"]
    attn_dim, d_model = (int(x) for x in fusion["attention.k_proj_weight"].shape)
    spec = ModelSpec(
        encoders=names, widths=widths, time_steps=time_steps, tokens_per_step=tokens_per_step,
        num_classes=0, d_model=d_model, fusion="cross_attention",
        fusion_options={"attn_dim": attn_dim}, objective=objective,
        objective_options=dict(objective_options or {}),
    )  # fmt: skip
    model = MervMixer(spec)
    ours = {
        f"projectors.{k.split('.', 1)[0]}.{k.split('.', 2)[2]}": v for k, v in projectors.items()
    }
    q_bias, k_bias, _ = fusion["attention.in_proj_bias"].split(attn_dim)
    ours.update({
        "feature_fusion.query": fusion["Q"],
        "feature_fusion.q_proj.weight": fusion["attention.q_proj_weight"],
        "feature_fusion.q_proj.bias": q_bias,
        "feature_fusion.k_proj.weight": fusion["attention.k_proj_weight"],
        "feature_fusion.k_proj.bias": k_bias,
    })  # fmt: skip
    head = {k: v for k, v in model.state_dict().items() if k.startswith("head.")}
    model.load_state_dict({**ours, **head}, strict=True)
    return model
