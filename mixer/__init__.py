"""Train only the MERV projectors and mixer (plus a small head) on cached encoder features."""

from .checkpoint import load_model, save_model
from .config import TrainConfig
from .export import to_reference_state_dict
from .fusions import FUSIONS, CrossAttentionMixer, register_fusion
from .inmemory import FeatureData, load_features
from .model import MervMixer, ModelSpec, build_model
from .objectives import OBJECTIVES, register_objective
from .projectors import PROJECTORS, register_projector
from .registry import Registry
from .splits import split_indices
from .trainer import TrainResult, train

__all__ = [
    "FUSIONS",
    "OBJECTIVES",
    "PROJECTORS",
    "CrossAttentionMixer",
    "FeatureData",
    "MervMixer",
    "ModelSpec",
    "Registry",
    "TrainConfig",
    "TrainResult",
    "build_model",
    "load_features",
    "load_model",
    "register_fusion",
    "register_objective",
    "register_projector",
    "save_model",
    "split_indices",
    "to_reference_state_dict",
    "train",
]
