"""Train projectors + fusion + head on cached features (the frozen encoders never run here).

Recipe from the MERV alignment stage: AdamW (no weight decay on biases and 1-D parameters),
linear warmup over `warmup` of the steps then cosine decay to 0, gradient clipping at 1.0.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from .checkpoint import save_model
from .config import TrainConfig
from .dataset import FeatureData, iter_batches, load_features, split_indices
from .model import MervMixer, ModelSpec


@dataclass
class TrainResult:
    train_loss: list[float]
    train_acc: list[float]
    val_acc: list[float | None]  # None when val_fraction is 0
    mixer_weights: dict[
        str, float
    ]  # mean per-encoder weight over all rows; {} if the fusion has none
    param_counts: dict[str, int]
    seconds: float
    encoders: list[str] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    n_train: int = 0
    n_val: int = 0
    device: str = "cpu"
    out: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


@torch.no_grad()
def evaluate(
    model: MervMixer,
    data: FeatureData,
    indices: np.ndarray,
    batch_size: int,
    precision: str = "fp32",
) -> tuple[float, Any]:
    """Accuracy over `indices` and the summed encoder weights (None if the fusion has none)."""
    model.eval()
    device = next(model.parameters()).device
    correct, w_sum = 0, None
    for idx in iter_batches(indices, batch_size):
        feats, y = data.batch(idx.to(device))
        with autocast(device, precision):
            out, w = model(feats)
        out, w = out.float(), None if w is None else w.float()
        correct += model.head.correct(out, y)
        if w is not None:
            w_sum = w.sum(0) if w_sum is None else w_sum + w.sum(0)
    return correct / max(1, len(indices)), w_sum


def _fmt_weights(encoders: list[str], w: Any, n: int) -> str:
    if w is None or n == 0:
        return ""
    return (
        " w[" + " ".join(f"{e}={float(v) / n:.3f}" for e, v in zip(encoders, w, strict=True)) + "]"
    )


def train(config: TrainConfig, log: Callable[[str], None] = print) -> TrainResult:
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    data = load_features(config.store, config.encoders, config.labels, config.pool_grid, log=log)
    train_idx, val_idx = split_indices(data.targets.numpy(), config.val_fraction, config.seed)
    log(
        f"data: {len(data)} videos ({len(train_idx)} train / {len(val_idx)} val), "
        f"{len(data.classes)} classes, encoders {data.encoders} widths {data.widths}, "
        f"tokens {data.time_steps}x{data.grid}x{data.grid}, device {device}"
    )
    data.to(device)

    spec = ModelSpec(
        encoders=data.encoders,
        widths=data.widths,
        time_steps=data.time_steps,
        tokens_per_step=data.grid * data.grid,
        num_classes=len(data.classes),
        d_model=config.d_model,
        projector=config.projector,
        fusion=config.fusion,
        objective=config.objective,
        projector_options=dict(config.projector_options),
        fusion_options=dict(config.fusion_options),
        objective_options=dict(config.objective_options),
        classes=data.classes,
    )
    model = MervMixer(spec).to(device)
    counts = model.param_counts()
    log(f"model: {config.projector} -> {config.fusion} -> {config.objective}, params {counts}")

    opt = torch.optim.AdamW(
        param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas
    )
    steps_per_epoch = math.ceil(len(train_idx) / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(config.epochs * steps_per_epoch, config.warmup)
    )
    gen = torch.Generator().manual_seed(config.seed)

    result = TrainResult(
        train_loss=[],
        train_acc=[],
        val_acc=[],
        mixer_weights={},
        param_counts=counts,
        seconds=0.0,
        encoders=data.encoders,
        classes=data.classes,
        n_train=len(train_idx),
        n_val=len(val_idx),
        device=str(device),
        out=config.out,
    )
    for epoch in range(1, config.epochs + 1):
        te = time.perf_counter()
        model.train()
        loss_sum, correct, w_sum = 0.0, 0, None
        for idx in iter_batches(train_idx, config.batch_size, gen):
            feats, y = data.batch(idx.to(device))
            with autocast(device, config.precision):
                out, w = model(feats)
                loss = model.head.loss(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            opt.step()
            sched.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += model.head.correct(out.detach(), y)
            if w is not None:
                w = w.detach().float().sum(0)
                w_sum = w if w_sum is None else w_sum + w
        result.train_loss.append(loss_sum / len(train_idx))
        result.train_acc.append(correct / len(train_idx))
        val_acc = (
            evaluate(model, data, val_idx, config.batch_size, config.precision)[0]
            if len(val_idx)
            else None
        )
        result.val_acc.append(val_acc)
        val_txt = f"{val_acc:.3f}" if val_acc is not None else "n/a"
        log(
            f"epoch {epoch}/{config.epochs} loss {result.train_loss[-1]:.4f} "
            f"train_acc {result.train_acc[-1]:.3f} val_acc {val_txt} "
            f"lr {sched.get_last_lr()[0]:.2e}{_fmt_weights(data.encoders, w_sum, len(train_idx))} "
            f"{time.perf_counter() - te:.1f}s"
        )

    _, w_all = evaluate(model, data, np.arange(len(data)), config.batch_size, config.precision)
    if w_all is not None:
        result.mixer_weights = {
            e: float(v) / len(data) for e, v in zip(data.encoders, w_all, strict=True)
        }
    result.seconds = time.perf_counter() - t0
    if config.out:
        save_outputs(Path(config.out), model, config, result)
        log(f"saved {config.out}/model.safetensors, train_config.yaml, results.json")
    return result


def save_outputs(out: Path, model: MervMixer, config: TrainConfig, result: TrainResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_model(
        model, out / "model.safetensors", extra={"train_config": json.dumps(config.to_dict())}
    )
    (out / "train_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
