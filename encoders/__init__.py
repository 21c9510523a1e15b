"""Frozen video encoders for MERV: specs, registry, preprocessing, weight loading, forward.

Imports nothing from the project's other packages.
"""

from encoders.base import FrozenEncoder, build_encoder
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
