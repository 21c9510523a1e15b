"""Typed training configuration; the CLI loads it from YAML and overrides single fields."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import from_mapping

# What a run field left at None means, per objective (`TrainConfig.with_recipe`).
RECIPES: dict[str, dict[str, Any]] = {
    "probe": {"epochs": 10, "batch_size": 32, "micro_batch_size": None},
    # MERV's align stage (princetonvisualai/merv, merv/conf/models.py, `align_*`): 1 epoch,
    # global batch 256 with 16 per device, the rest by gradient accumulation. Its lr 1e-3,
    # linear warmup over 3% then cosine decay, weight decay 0 and grad clip 1.0 are the defaults
    # of the fields below, for every objective.
    "lm": {"epochs": 1, "batch_size": 256, "micro_batch_size": 16},
    # A student regresses dense targets (every token of every row): smaller batches than a
    # probe; on the demo store its loss flattens between epochs 10 and 15.
    "distill": {"epochs": 15, "batch_size": 16, "micro_batch_size": None},
}


@dataclass
class TrainConfig:
    # Store URL/path. TrainConfig(store=<open store>) also works (tests, notebooks); from_dict
    # reads text only.
    store: str
    # None = every encoder in the store, in store (MERV) order.
    encoders: list[str] | None = None
    # Rows are those ok for every encoder of `encoders` and of `row_encoders`: an ablation
    # trains each variant on the rows of every encoder it compares (None: `encoders` alone).
    row_encoders: list[str] | None = None
    # CSV / Parquet / JSONL with columns video_id,label; None = the manifest's `label` column.
    labels: str | None = None
    projector: str = "linear"
    fusion: str = "cross_attention"
    objective: str = "probe"
    # Extra keyword arguments for the chosen components, e.g. fusion_options={"attn_dim": 3072}.
    projector_options: dict[str, Any] = field(default_factory=dict)
    fusion_options: dict[str, Any] = field(default_factory=dict)
    objective_options: dict[str, Any] = field(default_factory=dict)
    # Small by default: 4096 (Llama-2-7B width) only matters for the LLM stage.
    d_model: int = 128
    # Read-time spatial pooling of the GxG grid (e.g. 8 -> 4); None keeps the stored grid.
    pool_grid: int | None = None
    pool_time: int | None = None  # read-time pooling of the time steps (e.g. 16 -> 8)
    # None: the objective's recipe (RECIPES above): probe 10 epochs of batch 32, lm MERV's.
    epochs: int | None = None
    batch_size: int | None = None  # rows per optimizer step, over all processes
    # Rows per forward/backward; a batch is made of several, their gradients accumulated.
    micro_batch_size: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.0
    betas: tuple[float, float] = (0.9, 0.999)
    warmup: float = 0.03  # fraction of all optimizer steps
    grad_clip: float = 1.0
    # Seeded stratified validation share, used when no named split is given.
    val_fraction: float = 0.2
    # A named split (train / val / test per video; test rows are left out of the run): a
    # CSV / Parquet / JSONL file of video_id,<split_column> rows, or without a file the
    # manifest's column `split_column`. split_column defaults to "split" with a file.
    split_file: str | None = None
    split_column: str | None = None
    seed: int = 0
    out: str | None = None  # checkpoint directory
    device: str = "auto"  # "auto" | "cpu" | "cuda" | "cuda:1" | "mps"
    # "bf16" = autocast forward (the reference trains in bf16 on GPU; ~3x faster on an H200 at
    # MERV sizes); parameters and optimizer state stay float32.
    precision: str = "fp32"
    # Streaming (mixer.stream): background reader processes, rows mixed per shuffle window.
    loader_workers: int = 2
    shuffle_rows: int = 256
    # Checkpoints in OUT/checkpoints every N optimizer steps (0: only at the end), the last
    # `keep_checkpoints` kept; `resume` continues from the latest one.
    checkpoint_every: int = 0
    keep_checkpoints: int = 2
    resume: bool = False
    log_every: int = 1  # one OUT/metrics.jsonl line every N steps
    progress: bool = True  # a bar of steps/s, videos/s and loss, on a terminal only
    # Ray Train: `workers` > 0 runs the loop as a TorchTrainer job with that many workers, on
    # the cluster at `address` (None: a local Ray); 0 trains in this process.
    workers: int = 0
    address: str | None = None

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if not self.store:
            raise ValueError("TrainConfig.store is required (URL or path of the feature store)")
        if self.encoders is not None and len(self.encoders) == 0:
            raise ValueError(
                "TrainConfig.encoders is empty; use None for all encoders in the store"
            )
        sizes = (self.epochs, self.batch_size, self.micro_batch_size)  # None: the recipe's
        if self.d_model <= 0 or any(v is not None and v <= 0 for v in sizes):
            raise ValueError("d_model, epochs, batch_size and micro_batch_size must be positive")
        for name in ("pool_grid", "pool_time"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive or None, got {getattr(self, name)}")
        if self.loader_workers < 0 or self.shuffle_rows < 1 or self.checkpoint_every < 0:
            raise ValueError("loader_workers and checkpoint_every must be >= 0, shuffle_rows >= 1")
        if self.workers < 0:
            raise ValueError(f"workers must be >= 0 (0: train in this process), got {self.workers}")
        if self.keep_checkpoints < 1 or self.log_every < 1:
            raise ValueError("keep_checkpoints and log_every must be >= 1")
        if self.resume and not self.out:
            raise ValueError("resume needs out: the folder whose checkpoints/ it continues from")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in [0, 1), got {self.val_fraction}")
        if not 0.0 <= self.warmup < 1.0:
            raise ValueError(f"warmup is a fraction of all steps in [0, 1), got {self.warmup}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if self.lr <= 0 or self.weight_decay < 0 or self.grad_clip <= 0:
            raise ValueError("lr and grad_clip must be positive and weight_decay non-negative")

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["betas"] = list(self.betas)  # YAML/JSON friendly
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], **overrides: Any) -> TrainConfig:
        """Build from a mapping (e.g. parsed YAML); `overrides` win.

        Loading is `pipeline.config.from_mapping`'s: values are coerced to the field types (a
        betas list becomes the tuple, "a,b" the encoders list) and unknown keys are a
        `ConfigError` (a ValueError) naming them and the known fields.
        """
        return from_mapping(cls, {**d, **overrides}, source="TrainConfig")

    def with_recipe(self) -> TrainConfig:
        """The fields left at None filled from the objective's recipe (``RECIPES``)."""
        recipe = RECIPES.get(self.objective, RECIPES["probe"])
        return self.replace(**{k: v for k, v in recipe.items() if getattr(self, k) is None})

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)
