"""Frozen video encoders for MERV: specs, registry, preprocessing, weights, forward, alignment.

From the project's other packages it uses only `pipeline.sampling` (the 32 sampled frames) and
`pipeline.config` (the one config loader). Specs, the registries and weight finding import no
torch, so a job's driver (which only plans, checks and writes) stays small; the models load on
the workers. Backends: `encoders.backbones`; alignment to [T, G*G, C]: `encoders.align`.
"""

from encoders.custom import check_encoders, check_spec_weights, register_from_config
from encoders.registry import ENCODER_SETS, get_spec, list_specs, register, resolve_encoder_set
from encoders.spec import EncoderSpec
from encoders.weights import WeightsNotFoundError

__all__ = [
    "ENCODER_SETS",
    "EncoderSpec",
    "FrozenEncoder",
    "WeightsNotFoundError",
    "build_encoder",
    "check_encoders",
    "check_spec_weights",
    "get_spec",
    "list_specs",
    "register",
    "register_from_config",
    "resolve_encoder_set",
]


def __getattr__(name: str):
    if name in ("FrozenEncoder", "build_encoder"):  # torch-backed: imported on first use
        from encoders import base

        return getattr(base, name)
    raise AttributeError(f"module 'encoders' has no attribute {name!r}")
