"""Frozen video encoders for MERV: specs, registry, preprocessing, weight loading, forward.

Imports nothing from the project's other packages. Specs and the registry import no torch, so a
job's driver (which only plans and writes) stays small; the models load on the workers.
"""

from encoders.custom import check_encoders, register_from_config
from encoders.registry import ENCODER_SETS, get_spec, list_specs, register, resolve_encoder_set
from encoders.spec import NUM_SAMPLED_FRAMES, EncoderSpec
from encoders.weights import WeightsNotFoundError

__all__ = [
    "ENCODER_SETS",
    "NUM_SAMPLED_FRAMES",
    "EncoderSpec",
    "FrozenEncoder",
    "WeightsNotFoundError",
    "build_encoder",
    "check_encoders",
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
