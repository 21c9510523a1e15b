"""Finding an encoder's checkpoint files: a given local path, else the HF hub (cache or network).

Imports no torch, and for the built-in specs no timm (which imports torch): a job's driver runs
its pre-flight check with these functions. Reading the files into tensors happens on the workers
(`encoders.backbones._base.read_state_dict`). Never runs remote code.
"""

from __future__ import annotations

import os
from pathlib import Path

from encoders.registry import TIMM_HUB_REPOS
from encoders.spec import EncoderSpec
from pipeline.config import hub_offline

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


def resolve_local(spec: EncoderSpec, weights: str | os.PathLike[str]) -> Path:
    """`weights` as a path holding checkpoint files; WeightsNotFoundError naming it if not."""
    path = Path(weights).expanduser()
    if not weight_files(path):
        raise missing_weights(spec, f"checkpoint files at '{path}' (safetensors, bin, pt, pth)")
    return path


def hub_source(spec: EncoderSpec, offline: bool | None = None) -> Path:
    """Local path to the weights `spec` names itself (no weights path given), or
    WeightsNotFoundError: an `hf_auto` checkpoint folder, else the hub repo (for timm models
    timm's repo of the model) from the HF cache or, unless offline, the network.

    `offline` defaults to HF_HUB_OFFLINE; when true only the HF cache is consulted.
    """
    local = Path(spec.checkpoint).expanduser()
    if spec.backend == "hf_auto" and local.is_dir():  # a checkpoint folder named by the spec
        return resolve_local(spec, local)
    repo_id = _timm_hub_repo(spec) if spec.backend == "timm" else spec.checkpoint
    return hub_snapshot(spec, repo_id, offline)


def _timm_hub_repo(spec: EncoderSpec) -> str:
    """timm's HF hub repo of a timm model; the built-in ones are known without importing timm."""
    if spec.checkpoint in TIMM_HUB_REPOS:
        return TIMM_HUB_REPOS[spec.checkpoint]
    import timm.models

    cfg = timm.models.get_pretrained_cfg(spec.checkpoint)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    if not hub_id:
        raise missing_weights(spec, f"a HF hub id for timm model '{spec.checkpoint}' (none)")
    return hub_id


def hub_snapshot(spec: EncoderSpec, repo_id: str, offline: bool | None = None) -> Path:
    """Local directory with the repo's weights (+ json), from the HF cache or the hub.

    Tries safetensors first, then pickle-format files. Offline (default: HF_HUB_OFFLINE) only
    the cache is consulted, so a missing checkpoint fails immediately.
    """
    from huggingface_hub import snapshot_download

    offline = hub_offline() if offline is None else offline
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
