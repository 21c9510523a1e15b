"""Checkpoints: safetensors weights plus the model spec in the file's metadata (never pickle)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .model import MervMixer, ModelSpec

FORMAT = "merv-pipeline/mixer/v1"
WEIGHTS_NAME = "model.safetensors"


def save_model(model: MervMixer, path: str | Path, extra: dict[str, str] | None = None) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    metadata = {"format": FORMAT, "model_spec": json.dumps(model.spec.to_dict())}
    metadata.update(extra or {})
    save_file(tensors, str(path), metadata=metadata)
    return path


def read_spec(path: str | Path) -> ModelSpec:
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if meta.get("format") != FORMAT or "model_spec" not in meta:
        raise ValueError(
            f"{path} is not a mixer checkpoint (metadata format {meta.get('format')!r})"
        )
    return ModelSpec.from_dict(json.loads(meta["model_spec"]), source=f"{path} model_spec")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> MervMixer:
    """Rebuild the model from a `model.safetensors` file (or the directory holding one)."""
    path = Path(path)
    if path.is_dir():
        path = path / WEIGHTS_NAME
    model = MervMixer(read_spec(path))
    model.load_state_dict(load_file(str(path), device=str(device)), strict=True)
    return model.to(device)


def saved_train_config(checkpoint: str | Path, store: str | None = None):
    """The train config saved beside a checkpoint (its rows, split, pooling), on ``store`` if
    given (the same store moved elsewhere)."""
    import yaml

    from .config import TrainConfig

    folder = Path(checkpoint)
    folder = folder if folder.is_dir() else folder.parent
    path = folder / "train_config.yaml"
    if not path.exists():
        raise ValueError(f"{folder} has no train_config.yaml beside {WEIGHTS_NAME}")
    config = TrainConfig.from_dict(yaml.safe_load(path.read_text()))
    return config.replace(store=store) if store else config
