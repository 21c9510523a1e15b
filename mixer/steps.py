"""One optimizer step on a streamed batch, and evaluation over a stream.

A batch arrives as numpy (float16, float32 once pooled) and is turned into float32 on the
device here, the same conversion the in-memory dataset makes, so small stores train as before.
Under ``torch.distributed`` each rank holds its part of the global batch; its loss is scaled by
``world * weight / global weight`` (rows, or a language model's supervised tokens) so that
averaging the gradients over the ranks (DDP) gives the gradient of the whole batch's mean loss:
N processes take the steps of one, and so do micro-batches with accumulated gradients.
"""

from __future__ import annotations

import contextlib
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


def split_inputs(core, feats: list) -> tuple[list, list]:
    """A batch's features (``TrainRows.read_encoders`` order) -> (the model's encoders', the
    objective's own: a distillation's teacher encoders; usually none)."""
    n = len(core.spec.encoders)
    return feats[:n], feats[n:]


@dataclass
class StepOut:
    loss: float  # this batch's mean loss (this rank's rows)
    rows: int
    correct: int
    grad_norm: float  # before clipping
    weights: Tensor | None  # summed mixer weights of the rows, [E]


def micro_spans(rows: int, micro: int | None) -> list[tuple[int, int]]:
    """[lo, hi) row spans of a batch's forward/backward passes (one when ``micro`` is None)."""
    size = micro or max(1, rows)
    return [(lo, min(lo + size, rows)) for lo in range(0, rows, size)] or [(0, 0)]


def train_step(model, opt, sched, batch: Batch, device, config, autocast, world: int) -> StepOut:
    """Forward and backward per micro-batch (gradients accumulated), clip, step the optimizer
    and the schedule.

    The loss of the step is the objective's mean over the whole global batch: each
    micro-batch's mean loss is weighted by its share of the batch (``head.loss_weight``: rows
    for a probe, supervised tokens for a language model), so accumulation and ranks change
    nothing but the memory used.
    """
    core = getattr(model, "module", model)  # DDP wraps the model
    core.train()
    feats, y = to_device(batch, device)
    feats, extra = split_inputs(core, feats)
    spans = micro_spans(len(y), config.micro_batch_size)
    weights = [float(core.head.loss_weight(y[lo:hi])) for lo, hi in spans]
    total = sum(weights)
    if world > 1:  # the whole global batch's weight (a language model's token count differs)
        total = float(all_sum(torch.tensor([total], dtype=torch.float64, device=device)))
    opt.zero_grad(set_to_none=True)
    loss_sum, correct, w_sum = 0.0, 0, None
    for k, ((lo, hi), weight) in enumerate(zip(spans, weights, strict=True)):
        last = k == len(spans) - 1
        sync = contextlib.nullcontext() if last or world == 1 else model.no_sync()
        with sync:
            with autocast(device, config.precision):
                out, w = model([f[lo:hi] for f in feats])
                if hi > lo:
                    loss, right = core.head.loss_and_correct(
                        out.float(), y[lo:hi], *[f[lo:hi] for f in extra]
                    )
                else:  # this rank's part of a short last batch is empty: it still steps
                    loss, right = out.float().sum() * 0.0, 0
            (loss * (world * weight / total if total else 0.0)).backward()
        loss_sum += float(loss.detach()) * weight
        correct += right
        if w is not None:
            w = w.detach().float().sum(0)
            w_sum = w if w_sum is None else w_sum + w
    norm = nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    opt.step()
    sched.step()
    if world == 1:
        return StepOut(loss_sum / total if total else 0.0, len(y), correct, float(norm), w_sum)
    # the whole global batch's figures, as one process would have logged them
    parts = [torch.tensor([loss_sum, correct], dtype=torch.float64)]
    if w_sum is not None:
        parts.append(w_sum.double().cpu())
    summed = all_sum(torch.cat(parts).to(device))
    w_all = None if w_sum is None else summed[2:].float()
    return StepOut(float(summed[0]) / total, batch.global_size, int(summed[1]), float(norm), w_all)


@torch.no_grad()
def evaluate(
    model, stream, device, precision: str, autocast, micro: int | None = None
) -> tuple[float, Tensor | None, int]:
    """Correct predictions' share over one pass of ``stream``, summed mixer weights, rows
    (forwards of ``micro`` rows at most)."""
    core = getattr(model, "module", model)
    core.eval()
    correct, rows, w_sum = 0, 0, None
    for batch in stream.epoch(0):
        if not len(batch.rows):
            continue
        feats, y = to_device(batch, device)
        feats, extra = split_inputs(core, feats)
        for lo, hi in micro_spans(len(y), micro):
            with autocast(device, precision):
                out, w = core([f[lo:hi] for f in feats])
            correct += core.head.correct(out.float(), y[lo:hi], *[f[lo:hi] for f in extra])
            if w is not None:
                w = w.float().sum(0)
                w_sum = w if w_sum is None else w_sum + w
        rows += len(y)
    return correct / max(1, rows), w_sum, rows
