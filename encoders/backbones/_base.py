"""What every backbone shares: the Backbone base class, the kept-layer index, and reading
checkpoint files into a state dict (the one place that turns weights into tensors).

Every backbone maps pixels [B, F, 3, S, S] -> raw token grid [B, T, Hg, Wg, C] for the spec's
kept layer, prefix tokens dropped. Blocks after the kept layer are removed after loading, so they
cost neither time nor memory. A backbone is built as ``cls(spec, source)``: ``source`` is None
for a random architecture, or a local path (file or directory) to load weights from.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from encoders.spec import EncoderSpec
from encoders.weights import weight_files


def kept_index(layer: int, depth: int) -> int:
    if not -depth <= layer < depth:
        raise ValueError(f"layer {layer} out of range for a {depth}-block model")
    return layer % depth


def check_load(
    name: str, missing: list[str], unexpected: list[str], ignore: tuple[str, ...]
) -> None:
    unexpected = [k for k in unexpected if not k.startswith(ignore)]
    if missing or unexpected:
        raise ValueError(
            f"checkpoint does not fit encoder '{name}': missing {missing[:5]} "
            f"({len(missing)}), unexpected {unexpected[:5]} ({len(unexpected)})"
        )


class Backbone(nn.Module):
    """Common output handling: drop prefix tokens, check and reshape to [B, T, Hg, Wg, C]."""

    def __init__(self, spec: EncoderSpec) -> None:
        super().__init__()
        self.spec = spec

    def to_grid(
        self, tokens: torch.Tensor, batch: int, time: int, prefix: int | None = None
    ) -> torch.Tensor:
        """tokens [B * T, prefix + Hg * Wg, C] or [B, prefix + T * Hg * Wg, C] -> grid."""
        s = self.spec
        tokens = tokens[:, s.prefix_tokens if prefix is None else prefix :]
        shape = (batch, time, s.grid[0], s.grid[1], s.width)
        if tokens.numel() != math.prod(shape):
            raise RuntimeError(
                f"encoder '{s.name}' produced {tuple(tokens.shape)}, which does not fit "
                f"{shape}; check the spec's grid/width/prefix_tokens"
            )
        return tokens.reshape(shape)


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Merge every checkpoint file at `path` into one CPU state dict.

    Never unpickles arbitrary objects: safetensors is preferred, other files go through
    `torch.load(weights_only=True)`.
    """
    files = weight_files(path)
    if not files:
        raise FileNotFoundError(f"no checkpoint files at {path}")
    state: dict[str, torch.Tensor] = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            part = load_file(str(f), device="cpu")
        else:
            part = torch.load(str(f), map_location="cpu", weights_only=True)
        state.update(_unwrap(part, f))
    return state


def _unwrap(obj: object, source: Path) -> dict[str, torch.Tensor]:
    # Training checkpoints often nest the weights under one of these keys.
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{source} does not hold a flat tensor state dict")
    return dict(obj)
