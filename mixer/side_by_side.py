"""Several training runs over one read of the store: the shared-read fast path of ablations.

Runs that read the same rows in the same order (same store, rows, split, seed, batch size,
epochs, pooling; see `MODEL_FIELDS` for what may differ) train side by side: each batch is read
once, over the union of the runs' encoders, and every model takes its own encoders' columns
of it for its step. Validation and the final pass over every row are shared the same way.

Each run keeps what it would have alone: its initial weights (the seeded global RNG, as in
`mixer.train`), its own RNG stream for dropout (swapped in around its steps), its optimizer,
schedule, metrics and output folder. So its losses, weights and results equal a run of its own,
bitwise on CPU (a test checks it).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import torch

from .config import TrainConfig
from .epochs import (
    Run,
    TrainResult,
    end_epoch,
    open_epoch,
    open_readers,
    read_ahead,
    streams_of,
    summarise,
    take_step,
)
from .metrics import MetricsLog, plot_curves
from .resume import Progress
from .selection import TrainRows
from .steps import autocast, micro_spans, split_inputs, to_device
from .stream import Batch

# What may differ between runs trained side by side: the model, its optimizer and its outputs.
# Every other field decides which rows are read in which order, and must be equal.
MODEL_FIELDS = frozenset({
    "encoders", "projector", "fusion", "objective", "projector_options", "fusion_options",
    "objective_options", "d_model", "lr", "weight_decay", "betas", "warmup", "grad_clip", "out",
    "checkpoint_every", "keep_checkpoints", "log_every", "progress",
})  # fmt: skip


def read_key(config: TrainConfig) -> str | None:
    """What runs sharing reads must agree on; None: this run cannot share (a language model
    objective reads conversations, a resumed or Ray Train run has its own loop)."""
    config = config.with_recipe()
    if config.objective == "lm" or config.resume or config.workers:
        return None
    fields = {k: v for k, v in config.to_dict().items() if k not in MODEL_FIELDS}
    if not isinstance(config.store, str):
        return None
    return repr(sorted(fields.items()))


def shared_read_groups(configs: list[TrainConfig]) -> list[list[int]]:
    """Indices of ``configs`` grouped by `read_key`, in first-seen order; a run that cannot
    share is a group of its own."""
    groups: dict[str, list[int]] = {}
    alone = []
    for i, config in enumerate(configs):
        key = read_key(config)
        if key is None:
            alone.append([i])
        else:
            groups.setdefault(key, []).append(i)
    return list(groups.values()) + alone


class _RngSlot:
    """One run's torch RNG (CPU, and CUDA on a GPU), swapped in around its steps."""

    def __init__(self, device: torch.device):
        self.cuda = device.type == "cuda"
        self.cpu_state = torch.get_rng_state()
        self.cuda_state = torch.cuda.get_rng_state(device) if self.cuda else None
        self.device = device

    def __enter__(self) -> None:
        torch.set_rng_state(self.cpu_state)
        if self.cuda:
            torch.cuda.set_rng_state(self.cuda_state, self.device)

    def __exit__(self, *exc) -> None:
        self.cpu_state = torch.get_rng_state()
        if self.cuda:
            self.cuda_state = torch.cuda.get_rng_state(self.device)


@dataclasses.dataclass
class _Member:
    run: Run
    columns: list[int]  # the run's read encoders (its model's, its objective's) in the stream
    rng: _RngSlot
    log: Callable[[str], None]

    def view(self, batch: Batch) -> Batch:
        return dataclasses.replace(batch, features=[batch.features[j] for j in self.columns])


def train_side_by_side(
    configs: list[TrainConfig], logs: list[Callable[[str], None]] | None = None
) -> list[TrainResult]:
    """Train ``configs`` (one `shared_read_groups` group) over one read of the store; each run
    writes the outputs `mixer.train` would write to its own ``out``.

    Raises:
        ValueError: the runs do not read the same rows in the same order (the field named).
    """
    from .trainer import resolve_device, save_outputs, write_results

    t0 = time.perf_counter()
    configs = [c.with_recipe() for c in configs]
    logs = logs or [lambda *_: None] * len(configs)
    _check_shared(configs)
    device = resolve_device(configs[0].device)
    union = _union_encoders(configs)
    shared = _select(configs[0].replace(encoders=union))
    with open_readers(configs[0], shared) as readers:  # they start while the models are built
        members = _members(configs, logs, shared, device)
        streams = streams_of(configs[0], shared, readers)
        progress = [None] * len(members)
        for epoch in range(configs[0].epochs):
            progress = [open_epoch(p or Progress(), epoch) for p in progress]
            waited = time.perf_counter()
            after = lambda e=epoch: read_ahead(streams, e, configs[0].epochs)  # noqa: E731
            for batch in streams["train"].epoch(epoch, then=after):
                wait = time.perf_counter() - waited
                for k, m in enumerate(members):
                    with m.rng:
                        progress[k], _ = take_step(m.run, m.view(batch), progress[k], wait)
                waited = time.perf_counter()
            vals = _evaluate_all(members, streams["val"], device)
            for m, p, val in zip(members, progress, vals, strict=True):
                end_epoch(m.run, p, m.log, val=None if val is None else val[0])
        over_all = _evaluate_all(members, streams["all"], device)
        results = [
            summarise(m.run, p, o) for m, p, o in zip(members, progress, over_all, strict=True)
        ]
    share = (time.perf_counter() - t0) / len(members)
    for m, p, result in zip(members, progress, results, strict=True):
        result.seconds, result.shared_read = share, len(members)
        if m.run.out is not None:
            m.run.checkpoint(p)
            save_outputs(m.run.out, m.run.core, m.run.config, m.run.data.recipe)
            plot_curves(m.run.out)
            write_results(m.run.out, result)
    return results


def _members(configs, logs, shared: TrainRows, device: torch.device) -> list[_Member]:
    """Each run's model, optimizer and output, seeded as `mixer.train` seeds them."""
    from .trainer import build_optimizer, init_model

    read = shared.read_encoders  # the shared stream's columns
    members = []
    for config, log in zip(configs, logs, strict=True):
        torch.manual_seed(config.seed)  # as `mixer.train`: the same initial weights
        data = _select(config)
        if data.digest() != shared.digest():
            raise ValueError(f"{config.encoders}: its rows differ from the other runs'; set "
                             "row_encoders to every encoder of the group")  # fmt: skip
        model = init_model(config, data, device, log)
        opt, sched = build_optimizer(model, config, len(data.train))
        out = Path(config.out) if config.out else None
        run = Run(config, data, model, opt, sched, device, out, MetricsLog(out), 0, 1)
        columns = [read.index(e) for e in data.read_encoders]
        members.append(_Member(run, columns, _RngSlot(device), log))
    return members


def _select(config: TrainConfig) -> TrainRows:
    from .selection import select_rows

    return select_rows(config, log=lambda *_: None)


def _union_encoders(configs: list[TrainConfig]) -> list[str] | None:
    """Every encoder a run of the group reads: its model's and its objective's (a
    distillation's teacher); None when one of them reads every encoder of the store."""
    from .objectives import objective_encoders

    if any(c.encoders is None for c in configs):
        return None  # one of them reads every encoder: so does the group
    read = (e for c in configs for e in [*c.encoders, *objective_encoders(c)])
    return list(dict.fromkeys(read))


def _check_shared(configs: list[TrainConfig]) -> None:
    first = configs[0].to_dict()
    for config in configs[1:]:
        for key, value in config.to_dict().items():
            if key not in MODEL_FIELDS and value != first[key]:
                raise ValueError(f"runs trained side by side must share {key} "
                                 f"({first[key]!r} vs {value!r}): train them apart")  # fmt: skip
    if read_key(configs[0]) is None:
        raise ValueError("a language-model, resumed or Ray Train run cannot share reads")


@torch.no_grad()
def _evaluate_all(members: list[_Member], stream, device) -> list[tuple | None]:
    """Every member's (accuracy, summed mixer weights, rows) over one pass of ``stream``."""
    if stream is None:
        return [None] * len(members)
    counts = [[0, None] for _ in members]  # correct, summed weights
    rows = 0
    for m in members:
        m.run.core.eval()
    for batch in stream.epoch(0):
        if not len(batch.rows):
            continue
        feats, y = to_device(batch, device)
        for m, count in zip(members, counts, strict=True):
            cfg, core = m.run.config, m.run.core
            mine, extra = split_inputs(core, [feats[j] for j in m.columns])
            for lo, hi in micro_spans(len(y), cfg.micro_batch_size):  # as `steps.evaluate`
                with autocast(device, cfg.precision):
                    out, w = core([f[lo:hi] for f in mine])
                count[0] += core.head.correct(out.float(), y[lo:hi], *[f[lo:hi] for f in extra])
                if w is not None:
                    w = w.float().sum(0)
                    count[1] = w if count[1] is None else count[1] + w
        rows += len(y)
    return [(c / max(1, rows), w, rows) for c, w in counts]
