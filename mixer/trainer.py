"""Train projectors + fusion + head on cached features (the frozen encoders never run here).

Recipe from the MERV alignment stage: AdamW (no weight decay on biases and 1-D parameters),
linear warmup over `warmup` of the steps then cosine decay to 0, gradient clipping at
`grad_clip` (1.0).
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
from torch import Tensor, nn

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
    """Fit projectors + fusion + head on the cached features of `config.store`.

    Args:
        config: the run; `config.seed` fixes the split, the initial weights, the batch order
            and dropout: same config and seed, same weights. With `config.out` set, the run
            also writes `model.safetensors`, `train_config.yaml` and `results.json` there.
        log: receives one line for the data, the model, each epoch and the saved files.

    Returns per-epoch losses and accuracies, mean mixer weight per encoder, parameter counts.

    Raises:
        ValueError: an encoder not in the store, no rows ok for the chosen encoders, a video
            without a label, a labels file of unknown format or without video_id,label
            columns, `pool_grid` above the stored grid, or an unknown component (projector,
            fusion, objective) or option of one.
        pipeline.store.StoreError: no feature store at `config.store`.
        FileNotFoundError: the labels file does not exist.
    """
    t0 = time.perf_counter()
    device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    data, train_idx, val_idx = prepare_data(config, device, log)
    model = init_model(config, data, device, log)
    opt, sched = build_optimizer(model, config, len(train_idx))
    gen = torch.Generator().manual_seed(config.seed)
    result = TrainResult(
        train_loss=[],
        train_acc=[],
        val_acc=[],
        mixer_weights={},
        param_counts=model.param_counts(),
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
        loss, acc, w_sum = train_epoch(model, opt, sched, data, train_idx, gen, config)
        result.train_loss.append(loss)
        result.train_acc.append(acc)
        val_acc = val_accuracy(model, data, val_idx, config)
        result.val_acc.append(val_acc)
        val_txt = f"{val_acc:.3f}" if val_acc is not None else "n/a"
        log(
            f"epoch {epoch}/{config.epochs} loss {loss:.4f} train_acc {acc:.3f} "
            f"val_acc {val_txt} lr {sched.get_last_lr()[0]:.2e}"
            f"{_fmt_weights(data.encoders, w_sum, len(train_idx))} "
            f"{time.perf_counter() - te:.1f}s"
        )
    result.mixer_weights = mean_mixer_weights(model, data, config)
    result.seconds = time.perf_counter() - t0
    if config.out:
        save_outputs(Path(config.out), model, config, result)
        log(f"saved {config.out}/model.safetensors, train_config.yaml, results.json")
    return result


def prepare_data(
    config: TrainConfig, device: torch.device, log: Callable[[str], None]
) -> tuple[FeatureData, np.ndarray, np.ndarray]:
    """The store's features on `device`, and the seeded stratified train / val split."""
    data = load_features(config.store, config.encoders, config.labels, config.pool_grid, log=log)
    train_idx, val_idx = split_indices(data.targets.numpy(), config.val_fraction, config.seed)
    log(
        f"data: {len(data)} videos ({len(train_idx)} train / {len(val_idx)} val), "
        f"{len(data.classes)} classes, encoders {data.encoders} widths {data.widths}, "
        f"tokens {data.time_steps}x{data.grid}x{data.grid}, device {device}"
    )
    return data.to(device), train_idx, val_idx


def init_model(
    config: TrainConfig, data: FeatureData, device: torch.device, log: Callable[[str], None]
) -> MervMixer:
    """The model for `data` under `config`, initialised from the global (seeded) RNG."""
    model = MervMixer(ModelSpec.from_train_config(config, data)).to(device)
    counts = model.param_counts()
    log(f"model: {config.projector} -> {config.fusion} -> {config.objective}, params {counts}")
    return model


def build_optimizer(
    model: MervMixer, config: TrainConfig, n_train: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the decay / no-decay groups, stepped per batch by warmup then cosine."""
    opt = torch.optim.AdamW(
        param_groups(model, config.weight_decay), lr=config.lr, betas=config.betas
    )
    steps_per_epoch = math.ceil(n_train / config.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, warmup_cosine(config.epochs * steps_per_epoch, config.warmup)
    )
    return opt, sched


def train_epoch(
    model: MervMixer,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LambdaLR,
    data: FeatureData,
    train_idx: np.ndarray,
    gen: torch.Generator,
    config: TrainConfig,
) -> tuple[float, float, Tensor | None]:
    """One pass over `train_idx` in `gen`'s order: mean loss, accuracy, summed mixer weights."""
    model.train()
    device = next(model.parameters()).device
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
    return loss_sum / len(train_idx), correct / len(train_idx), w_sum


def val_accuracy(
    model: MervMixer, data: FeatureData, val_idx: np.ndarray, config: TrainConfig
) -> float | None:
    """Accuracy on the validation rows; None when there are none (val_fraction 0)."""
    if not len(val_idx):
        return None
    return evaluate(model, data, val_idx, config.batch_size, config.precision)[0]


def mean_mixer_weights(model: MervMixer, data: FeatureData, config: TrainConfig) -> dict:
    """Each encoder's mixer weight averaged over every row; {} if the fusion has none."""
    _, w_all = evaluate(model, data, np.arange(len(data)), config.batch_size, config.precision)
    if w_all is None:
        return {}
    return {e: float(v) / len(data) for e, v in zip(data.encoders, w_all, strict=True)}


def save_outputs(out: Path, model: MervMixer, config: TrainConfig, result: TrainResult) -> None:
    out.mkdir(parents=True, exist_ok=True)
    save_model(
        model, out / "model.safetensors", extra={"train_config": json.dumps(config.to_dict())}
    )
    (out / "train_config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    (out / "results.json").write_text(json.dumps(result.to_dict(), indent=2) + "\n")
