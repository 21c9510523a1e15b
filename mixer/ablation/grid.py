"""An ablation grid: the axes a user varies, expanded into one training run per variant and seed.

A grid file's ``ablate:`` section names the store, the output folder and the values of each
axis; ``train:`` inside it holds every other `TrainConfig` field, shared by all variants::

    ablate:
      store: demo_out/store.zarr
      out: ablations/demo
      encoders: [all, singles]        # all | singles | leave-one-out | all-subsets | [a, b]
      fusions: [cross_attention, channel_concat]
      seeds: [0, 1]
      train: {labels: demo_out/labels.csv, epochs: 30}

Every variant trains on the same rows: those ok for every encoder the grid uses (`row_encoders`),
so that no variant is compared on easier videos than another.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from typing import Any

from pipeline.config import ConfigError, from_mapping, load_section

from ..config import TrainConfig

ENCODER_SETS = ("all", "singles", "leave-one-out", "all-subsets")
# TrainConfig fields the grid sets for every variant (-> where a grid file gives them): the same
# key under `train:` would be overridden without a word, so it is refused.
SET_BY_GRID = {
    "encoders": "encoders", "fusion": "fusions", "projector": "projectors",
    "objective": "objectives", "pool_grid": "pool_grid", "pool_time": "pool_time", "lr": "lr",
    "seed": "seeds", "store": "store", "out": "out", "row_encoders": None,
}  # fmt: skip


@dataclass
class AblationConfig:
    store: str
    out: str
    metric: str = "val_acc"  # what the table and bars compare (a TrainResult value, last epoch)
    seeds: list[int] = field(default_factory=lambda: [0])
    encoders: list[Any] = field(default_factory=lambda: ["all"])
    fusions: list[str] = field(default_factory=lambda: ["cross_attention"])
    projectors: list[str] = field(default_factory=lambda: ["linear"])
    objectives: list[str] = field(default_factory=lambda: ["probe"])
    pool_grid: list[int | None] = field(default_factory=lambda: [None])  # token budgets
    pool_time: list[int | None] = field(default_factory=lambda: [None])
    lr: list[float] = field(default_factory=lambda: [1e-3])
    train: dict[str, Any] = field(default_factory=dict)  # every other TrainConfig field
    cpus_per_variant: float = 1.0  # Ray resources of one variant's task
    gpus_per_variant: float = 0.0
    # Variants that read the same rows in the same order (same seed, batch size, epochs,
    # pooling, ...) train side by side over one read of the store (mixer.side_by_side).
    shared_read: bool = True

    def __post_init__(self) -> None:
        for key in [k for k in self.train if k in SET_BY_GRID]:
            axis = SET_BY_GRID[key]
            if axis is None:
                raise ConfigError(f"ablate.train.{key}: set by the grid (the rows ok for every "
                                  "encoder it uses, the same for all variants): remove it")  # fmt: skip
            value = json.dumps(self.train[key])  # YAML flow syntax too
            hint = f"{axis}: {value}" if axis in ("store", "out") else f"{axis}: [{value}]"
            raise ConfigError(f"ablate.train.{key}: set by the grid for every variant, so "
                              f"train's value is not used: give it as `{hint}` under ablate")  # fmt: skip

    @classmethod
    def load(cls, path: str, **overrides: Any) -> AblationConfig:
        data = load_section(path, "ablate")
        data.update({k: v for k, v in overrides.items() if v is not None})
        return from_mapping(cls, data, source=f"{path} [ablate]")


@dataclass(frozen=True)
class Variant:
    key: str  # the variant without its seed: what results are grouped by
    seed: int
    config: TrainConfig

    @property
    def id(self) -> str:
        digest = hashlib.sha1(self.key.encode()).hexdigest()[:10]
        return f"{digest}-seed{self.seed}"


def encoder_subsets(spec: Any, store_encoders: list[str]) -> list[list[str]]:
    """The encoder lists one entry of ``encoders`` stands for, in store order."""
    if isinstance(spec, list):
        unknown = [e for e in spec if e not in store_encoders]
        if unknown:
            raise ConfigError(f"ablate.encoders: {unknown} not in the store ({store_encoders})")
        return [list(spec)]
    n = len(store_encoders)
    if spec == "all":
        return [list(store_encoders)]
    if spec == "singles":
        return [[e] for e in store_encoders]
    if spec == "leave-one-out":
        return [[e for e in store_encoders if e != out] for out in store_encoders] if n > 1 else []
    if spec == "all-subsets":
        return [list(c) for k in range(1, n + 1) for c in itertools.combinations(store_encoders, k)]
    raise ConfigError(
        f"ablate.encoders: {spec!r} is neither a list of encoders nor one of {list(ENCODER_SETS)}"
    )


def expand(grid: AblationConfig, store_encoders: list[str]) -> list[Variant]:
    """Every variant x seed, in a stable order; duplicates (e.g. `all` and an explicit list of
    every encoder) once."""
    subsets: list[list[str]] = []
    for spec in grid.encoders:
        subsets += [s for s in encoder_subsets(spec, store_encoders) if s not in subsets]
    used = [e for e in store_encoders if any(e in s for s in subsets)]
    base = {**grid.train, "store": grid.store, "row_encoders": used}
    variants, seen = [], set()
    axes = itertools.product(subsets, grid.fusions, grid.projectors, grid.objectives,
                             grid.pool_grid, grid.pool_time, grid.lr)  # fmt: skip
    for encoders, fusion, projector, objective, pool_grid, pool_time, lr in axes:
        if len(encoders) == 1 and fusion != grid.fusions[0]:
            continue  # one encoder: nothing to fuse, every fusion would be the same model
        axis = {"encoders": encoders, "fusion": fusion, "projector": projector,
                "objective": objective, "pool_grid": pool_grid, "pool_time": pool_time, "lr": lr}  # fmt: skip
        key = json.dumps(axis, sort_keys=True)
        for seed in grid.seeds:
            if (key, seed) in seen:
                continue
            seen.add((key, seed))
            try:
                config = TrainConfig.from_dict({**base, **axis, "seed": seed})
            except ConfigError as err:
                raise ConfigError(f"ablate.train: {err}") from err
            variants.append(Variant(key, seed, config))
    return variants


def variant_name(config: TrainConfig, store_encoders: list[str]) -> str:
    """A short readable name: the encoders (or `all`), then the fusion and the other axes."""
    encoders = "all" if config.encoders == store_encoders else "+".join(config.encoders or [])
    parts = [encoders]
    if len(config.encoders or store_encoders) > 1:
        parts.append(config.fusion)
    return " ".join(parts)
