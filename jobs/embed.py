"""`merv embed INPUT --model C --out OUT.zarr`: serve a trained model on new videos.

It is `merv extract` with a model stage (``ExtractConfig.model``): the same listing, decode
tasks, encoder actors, single writer, lock, progress, failure rows and resume. The actors build
only the encoders the model reads (its checkpoint's feature recipe: each encoder's spec, the
alignment and pooling of the store it was trained on), make its inputs exactly as training read
them from that store (aligned, rounded to float16, pooled), and store its fused tokens in one
array, ``features/fused``, plus the probe's prediction (``prediction``, ``prediction_score``)
in the manifest. A distilled student therefore never loads the encoders it replaced.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from pathlib import Path

from pipeline.config import ConfigError

FUSED = "fused"  # the store's one array in an embed store


@dataclasses.dataclass(frozen=True)
class FusedSpec:
    """The store's view of a model's output, shaped like an encoder spec (name, width,
    fingerprint): a store embedded with one model refuses to be resumed with another."""

    width: int
    model: dict  # the checkpoint's digest, model spec and feature recipe
    name: str = FUSED

    def to_dict(self) -> dict:
        return {"name": self.name, "width": self.width, "model": self.model}

    def fingerprint(self) -> str:
        canon = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canon.encode()).hexdigest()[:16]


@dataclasses.dataclass
class EmbedPlan:
    encoder_specs: list  # EncoderSpec of each encoder the model reads, in its order
    store_spec: FusedSpec
    time_steps: int  # the output store's layout: the model's tokens
    grid: int
    actor: dict  # the encoder actors' model stage (jobs.model_stage.ModelStage)
    # how the training store's frames were decoded, when every input agrees (None: exact)
    decode: dict | None = None


def embed_plan(model: str) -> EmbedPlan:
    """What embedding with checkpoint ``model`` runs and stores (a clear error when the
    checkpoint cannot be served)."""
    from encoders import EncoderSpec
    from mixer.checkpoint import WEIGHTS_NAME, read_spec

    path = Path(model)
    path = path / WEIGHTS_NAME if path.is_dir() else path
    if not path.exists():
        raise ConfigError(f"--model {model}: no checkpoint there (a merv train/distill output)")
    spec, recipe = read_spec(path), _recipe(path)
    missing = [e for e in spec.encoders if not recipe["encoders"].get(e, {}).get("backend")]
    if missing:
        raise ConfigError(f"--model {model}: the store it was trained on recorded no full spec "
                          f"for {missing}; embed needs encoders extracted by merv extract")  # fmt: skip
    specs = [
        EncoderSpec.from_dict(recipe["encoders"][e], source=f"{path} {e}") for e in spec.encoders
    ]
    grid = math.isqrt(spec.tokens_per_step)
    if grid * grid != spec.tokens_per_step or _fused_tokens(spec) != spec.n_tokens:
        raise ConfigError(f"--model {model}: fusion {spec.fusion} gives {_fused_tokens(spec)} "
                          f"tokens, not the {spec.time_steps} x {grid}x{grid} grid a store holds; "
                          "embed serves models whose fused tokens keep the grid")  # fmt: skip
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    store_spec = FusedSpec(spec.d_model, {"checkpoint": digest, "spec": spec.to_dict(),
                                          "features": recipe})  # fmt: skip
    actor = {"path": str(path.resolve()), "encoders": list(spec.encoders),
             "time_steps": recipe["time_steps"], "grid": recipe["grid"],
             "pool_grid": recipe["pool_grid"], "pool_time": recipe["pool_time"]}  # fmt: skip
    return EmbedPlan(specs, store_spec, spec.time_steps, grid, actor, _decode(recipe))


def _decode(recipe: dict) -> dict | None:
    """The training store's decode tag when all the model's encoders share it (a store whose
    encoders were decoded differently serves exact unless told otherwise)."""
    tags = list((recipe.get("decode") or {}).values())
    return tags[0] if tags and all(t == tags[0] for t in tags) else None


def _recipe(path: Path) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    if "features" not in meta:
        raise ConfigError(f"{path} has no feature recipe (saved by an older merv train): "
                          "train it again to serve it with merv embed")  # fmt: skip
    return json.loads(meta["features"])


def _fused_tokens(spec) -> int:
    from mixer.model import MervMixer

    return MervMixer(spec).feature_fusion.out_tokens(spec.n_tokens)
