"""Finding and reading checkpoint files: local paths first, then the HF hub (cache or network).

Never unpickles arbitrary objects: safetensors is preferred, other files go through
`torch.load(weights_only=True)`. Never runs remote code.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from encoders.spec import EncoderSpec

if TYPE_CHECKING:  # torch is imported where weights are read: the job's driver never needs it
    import torch

SAFETENSORS_PATTERNS = ["*.safetensors", "*.json"]
PICKLE_PATTERNS = ["*.bin", "*.pt", "*.pth", "*.json"]
_PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")


class WeightsNotFoundError(RuntimeError):
    """Weights for an encoder are neither at the given path nor reachable on the hub."""


def missing_weights(spec: EncoderSpec, looked_for: str) -> WeightsNotFoundError:
    return WeightsNotFoundError(
        f"no weights for encoder '{spec.name}': looked for {looked_for}; "
        f"set weights.{spec.name} in the config or pass --weights {spec.name}=/path/to/checkpoint"
    )


def hub_offline() -> bool:
    """Read at call time (huggingface_hub reads HF_HUB_OFFLINE only once, at import)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on"):
            return True
    try:
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE)
    except Exception:  # pragma: no cover - very old huggingface_hub
        return False


def weight_files(path: Path) -> list[Path]:
    """Checkpoint files at a local path: the file itself, or a directory's safetensors (else bin)."""
    if path.is_file():
        return [path]
    if path.is_dir():
        found = sorted(path.glob("*.safetensors"))
        if not found:
            found = sorted(p for p in path.iterdir() if p.suffix in _PICKLE_SUFFIXES)
        return found
    return []


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """Merge every checkpoint file at `path` into one CPU state dict."""
    files = weight_files(path)
    if not files:
        raise FileNotFoundError(f"no checkpoint files at {path}")
    import torch

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
    import torch

    # Training checkpoints often nest the weights under one of these keys.
    for key in ("state_dict", "model", "module"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(f"{source} does not hold a flat tensor state dict")
    return dict(obj)


def hub_snapshot(spec: EncoderSpec, repo_id: str) -> Path:
    """Local directory with the repo's weights (+ json), from the HF cache or the hub.

    Tries safetensors first, then pickle-format files. With HF_HUB_OFFLINE set only the cache
    is consulted, so a missing checkpoint fails immediately.
    """
    from huggingface_hub import snapshot_download

    offline = hub_offline()
    where = f"hub repo '{repo_id}'" + (f"@{spec.revision}" if spec.revision else "")
    where += " in the local HF cache (HF_HUB_OFFLINE is set)" if offline else ""
    for patterns in (SAFETENSORS_PATTERNS, PICKLE_PATTERNS):
        try:
            local = Path(
                snapshot_download(
                    repo_id=repo_id,
                    revision=spec.revision,
                    allow_patterns=patterns,
                    local_files_only=offline,
                    etag_timeout=10,
                )
            )
        except Exception as exc:  # offline miss, unreachable hub, unknown repo or revision
            raise missing_weights(spec, f"{where} ({type(exc).__name__})") from exc
        if weight_files(local):
            return local
    raise missing_weights(spec, f"{where} (no checkpoint files in the snapshot)")


def resolve_local(spec: EncoderSpec, weights: str | os.PathLike[str]) -> Path:
    path = Path(weights).expanduser()
    if not weight_files(path):
        raise missing_weights(spec, f"checkpoint files at '{path}' (safetensors, bin, pt, pth)")
    return path
