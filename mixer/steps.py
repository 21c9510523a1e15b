"""One optimizer step on a streamed batch, and evaluation over a stream.

A batch arrives as numpy (float16, float32 once pooled) and is turned into float32 on the
device here, the same conversion the in-memory dataset makes, so small stores train as before.
Under ``torch.distributed`` each rank holds its part of the global batch; its loss is scaled by
``world * rows / global rows`` so that averaging the gradients over the ranks (DDP) gives the
gradient of the whole batch's mean loss: N processes take the steps of one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from .distributed import all_sum
from .stream import Batch


def autocast(device: torch.device, precision: str) -> torch.autocast:
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16")


def to_device(batch: Batch, device: torch.device) -> tuple[list[Tensor], Tensor]:
    feats = [torch.from_numpy(np.ascontiguousarray(f)).float().to(device) for f in batch.features]
    return feats, torch.from_numpy(batch.targets).to(device)


@dataclass
class StepOut:
    loss: float  # this batch's mean loss (this rank's rows)
    rows: int
    correct: int
    grad_norm: float  # before clipping
    weights: Tensor | None  # summed mixer weights of the rows, [E]


def train_step(model, opt, sched, batch: Batch, device, config, autocast, world: int) -> StepOut:
    """Forward, backward, clip, step the optimizer and the schedule."""
    core = getattr(model, "module", model)  # DDP wraps the model
    core.train()
    feats, y = to_device(batch, device)
    with autocast(device, config.precision):
        out, w = model(feats)
        if len(y):
            loss, correct = core.head.loss_and_correct(out.float(), y)
        else:
            loss, correct = out.float().sum() * 0.0, 0
    scale = world * len(y) / batch.global_size if world > 1 else 1.0
    opt.zero_grad(set_to_none=True)
    (loss * scale).backward()
    norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    opt.step()
    sched.step()
    weights = None if w is None else w.detach().float().sum(0)
    if world == 1:
        return StepOut(float(loss.detach()), len(y), correct, float(norm), weights)
    # the whole global batch's figures, as one process would have logged them
    parts = [
        loss.detach().double().reshape(1) * len(y),
        torch.tensor([correct], dtype=torch.float64),
    ]
    if weights is not None:
        parts.append(weights.double())
    total = all_sum(torch.cat(parts).to(device))
    rows = batch.global_size
    w_all = None if weights is None else total[2:].float()
    return StepOut(float(total[0]) / rows, rows, int(total[1]), float(norm), w_all)


@torch.no_grad()
def evaluate(model, stream, device, precision: str, autocast) -> tuple[float, Tensor | None, int]:
    """Correct predictions' share over one pass of ``stream``, summed mixer weights, rows."""
    core = getattr(model, "module", model)
    core.eval()
    correct, rows, w_sum = 0, 0, None
    for batch in stream.epoch(0):
        if not len(batch.rows):
            continue
        feats, y = to_device(batch, device)
        with autocast(device, precision):
            out, w = core(feats)
        correct += core.head.correct(out.float(), y)
        rows += len(y)
        if w is not None:
            w = w.float().sum(0)
            w_sum = w if w_sum is None else w_sum + w
    return correct / max(1, rows), w_sum, rows
