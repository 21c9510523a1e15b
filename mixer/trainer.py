"""Train projectors + fusion + head on cached features (the frozen encoders never run here).

Recipe from the MERV alignment stage: AdamW (no weight decay on biases and 1-D parameters),
linear warmup over `warmup` of the steps then cosine decay to 0, gradient clipping at
`grad_clip` (1.0).
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from .checkpoint import save_model
from .config import TrainConfig
from .distributed import join_if_launched, leave, rank_and_size, wrap
from .epochs import (
    Run,
    TrainResult,
    end_epoch,
    open_readers,
    resume,
    streams_of,
    summarise,
    train_epoch,
)
from .metrics import MetricsLog, plot_curves
from .model import MervMixer, ModelSpec
from .selection import select_rows


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def param_groups(model: nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim <= 1 or name.endswith(".bias") else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """LR multiplier: linear 0 -> 1 over the warmup steps, then cosine 1 -> 0 (as transformers')."""
    warmup = int(total_steps * warmup_fraction)

    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    """Fit projectors + fusion + head on the cached features of `config.store`, streamed.

    Args:
        config: the run; `config.seed` fixes the split, the initial weights, the data order
            and dropout: same config and seed, same weights. With `config.out` set, the run
            writes `model.safetensors`, `train_config.yaml`, `results.json`, `metrics.jsonl`,
            `curves.png` and `checkpoints/` there; `config.resume` continues from the latest
            checkpoint, to the losses and weights of an uninterrupted run.
        log: receives one line for the data, the model, each epoch and the saved files.

    Returns per-epoch losses and accuracies, mean mixer weight per encoder, parameter counts.

    Raises:
        ValueError: an encoder not in the store, no rows ok for the chosen encoders, a video
            without a label, a labels file of unknown format or without video_id,label
            columns, pooling that does not divide the stored grid or time steps, an unknown
            component (projector, fusion, objective) or option of one, or a checkpoint of
            another model spec or of changed features.
        pipeline.store.StoreError: no feature store at `config.store`.
        FileNotFoundError: the labels file does not exist.
    """
    t0 = time.perf_counter()
    config = language_model_width(config.with_recipe(), log)
    device = resolve_device(config.device)
    joined = join_if_launched(device)
    try:
        rank, world = rank_and_size()
        log = log if rank == 0 else _quiet  # one voice for the run
        torch.manual_seed(config.seed)
        data = prepare_data(config, device, log)
        with open_readers(config, data) as readers:  # they start while the model is built
            model = init_model(config, data, device, log)
            opt, sched = build_optimizer(model, config, len(data.train))
            out = Path(config.out) if config.out else None
            wrapped = wrap(model, device)
            run = Run(config, data, wrapped, opt, sched, device, out, MetricsLog(None), rank, world)
            progress = resume(run, log)
            run.metrics = MetricsLog(out if rank == 0 else None, progress.step)
            run.streams = streams_of(config, data, readers, rank, world)
            for epoch in range(progress.epoch, config.epochs):
                progress = train_epoch(run, epoch, progress)
                end_epoch(run, progress, log)
            result = summarise(run, progress)
        result.seconds = time.perf_counter() - t0
        if out and rank == 0:
            run.checkpoint(progress)
            save_outputs(out, model, config, data.recipe)
            plot_curves(out)
            write_results(out, result)  # last: a run with results.json is a finished run
            log(
                f"saved {config.out}/model.safetensors, train_config.yaml, results.json, curves.png"
            )
        return result
    finally:
        if joined:
            leave()


def _quiet(*_args) -> None:
    """The log of ranks other than 0."""


def prepare_data(config: TrainConfig, device: torch.device, log: Callable[[str], None]):
    """The rows, labels and split of the run (the features are streamed later)."""
    data = select_rows(config, log)
    log(
        f"data: {len(data.rows)} videos ({len(data.train)} train / {len(data.val)} val), "
        f"{len(data.classes)} classes, encoders {data.encoders} widths {data.widths}, "
        f"tokens {data.time_steps}x{data.grid}x{data.grid}, device {device}"
    )
    return data


def init_model(config: TrainConfig, data, device: torch.device, log: Callable[[str], None]):
    """The model for `data` under `config`, initialised from the global (seeded) RNG."""
    model = MervMixer(ModelSpec.from_train_config(config, data)).to(device)
    if data.texts is not None:  # objective lm: load the language model where it runs (bf16
        model.head.language_model(device)  # on a GPU), tokenise the run's conversations
        model.head.attach(data.texts)
    counts = model.param_counts()
    log(f"model: {config.projector} -> {config.fusion} -> {config.objective}, params {counts}")
    return model


def build_optimizer(
    model: MervMixer, config: TrainConfig, n_train: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the decay / no-decay groups, stepped per batch by warmup then cosine.

    The fused AdamW (one kernel over all parameters) where torch has it: the update is
    memory-bound, and at MERV's sizes (d_model 4096) the per-tensor loop took about a fifth of
    a CPU step."""
    device = next(model.parameters()).device.type
    opt = torch.optim.AdamW(
        param_groups(model, config.weight_decay),
        lr=config.lr,
        betas=config.betas,
        fused=device in ("cpu", "cuda"),
    )
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(config.epochs * steps_per_epoch, config.warmup)
    )
    return opt, sched


def save_outputs(out: Path, model: MervMixer, config: TrainConfig, recipe: dict) -> None:
    """model.safetensors (with the train config and the feature recipe, `merv embed`'s way
    from a video to the model's inputs, in its metadata) and train_config.yaml. An objective
    may deliver another model than the one trained (``head.deliverable``: a distilled student
    carries its teacher's head)."""
    out.mkdir(parents=True, exist_ok=True)
    deliver = getattr(model.head, "deliverable", None)
    extra = {"train_config": json.dumps(config.to_dict()), "features": json.dumps(recipe)}
    save_model(deliver(model) if deliver else model, out / "model.safetensors", extra=extra)
    (out / "train_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))


def write_results(out: Path, result: TrainResult) -> None:
    """results.json, whole or not at all: `merv ablate` takes it as the sign a run finished."""
    tmp = out / f".results.json.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    os.replace(tmp, out / "results.json")


def language_model_width(config: TrainConfig, log: Callable[[str], None]) -> TrainConfig:
    """Objective lm: the projectors' width is the language model's hidden size."""
    if config.objective != "lm":
        return config
    from .lm.backbone import hidden_size_of

    options = config.objective_options
    if not options.get("model"):
        raise ValueError("objective lm needs objective_options.model (a folder or hub id)")
    width = hidden_size_of(options["model"], options.get("revision"))
    if width != config.d_model:
        log(f"d_model {config.d_model} -> {width}, the hidden size of {options['model']}")
    return config.replace(d_model=width)
