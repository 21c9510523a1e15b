"""One training run, epoch by epoch: its shared state, the steps of an epoch with their
metrics and checkpoints, the end of an epoch (validation, one log line), and the result."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from pipeline.faults import fault_point

from .config import TrainConfig
from .metrics import MetricsLog
from .model import MervMixer
from .resume import Progress, latest_checkpoint, load_checkpoint, save_checkpoint
from .selection import TrainRows
from .steps import autocast, evaluate, train_step
from .stream import FeatureStream, ReaderPool, StreamConfig


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
    shared_read: int = 1  # runs trained side by side over one read (mixer.side_by_side)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_EVALUATE = object()  # end_epoch / summarise: measure it here


def _fmt_weights(encoders: list[str], w: Any, n: int) -> str:
    if w is None or n == 0:
        return ""
    return (
        " w[" + " ".join(f"{e}={float(v) / n:.3f}" for e, v in zip(encoders, w, strict=True)) + "]"
    )


@dataclass
class Run:
    """What every part of a training run shares."""

    config: TrainConfig
    data: TrainRows
    model: MervMixer
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    device: torch.device
    out: Path | None
    metrics: MetricsLog
    rank: int = 0
    world: int = 1
    streams: dict[str, FeatureStream | None] = field(default_factory=dict)

    @property
    def core(self) -> MervMixer:
        """The model itself (DDP wraps it in ``.module``)."""
        return getattr(self.model, "module", self.model)

    def checkpoint(self, progress: Progress) -> None:
        if self.out is not None and self.rank == 0:
            keep = self.config.keep_checkpoints
            fps, rows = self.data.fingerprints, self.data.digest()
            save_checkpoint(self.out, self.core, self.opt, self.sched, progress, fps, keep, rows)


def resume(run: Run, log: Callable[[str], None]) -> Progress:
    """Where the run starts: the latest checkpoint with `resume`, else the beginning."""
    if not run.config.resume:
        return Progress()
    path = latest_checkpoint(run.out)
    if path is None:
        log(f"resume: no checkpoint in {run.out}/checkpoints yet, starting from the beginning")
        return Progress()
    data = run.data
    progress = load_checkpoint(path, run.core, run.opt, run.sched, data.fingerprints, data.digest())
    log(f"resume: {path.name}, epoch {progress.epoch + 1} batch {progress.batch}")
    return progress


def open_readers(config: TrainConfig, data: TrainRows) -> ReaderPool:
    """The run's background readers, started and importing at once when its streams will use
    them (a part larger than one window; smaller parts are read once, in this process)."""
    readers = ReaderPool(config.loader_workers)
    if len(data.rows) > config.shuffle_rows:
        readers.warm()
    return readers


def streams_of(config: TrainConfig, data: TrainRows, readers: ReaderPool, rank=0, world=1):
    """The run's streams: training (this rank's part of each batch), validation, every row."""

    def stream(which, seed: int, rank: int = 0, world: int = 1):
        rows, targets = data.part(which)
        if not len(rows):
            return None
        cfg = StreamConfig(
            batch_size=config.batch_size,
            seed=seed,
            shuffle_rows=config.shuffle_rows,
            num_workers=config.loader_workers,
            pool_grid=config.pool_grid,
            pool_time=config.pool_time,
            rank=rank,
            world_size=world,
        )
        return FeatureStream(data.store_url, data.read_encoders, rows, cfg, targets, readers)

    every = range(len(data.rows))
    return {
        "train": stream(data.train, config.seed, rank, world),
        "val": stream(data.val, 0),
        "all": stream(every, 0),
    }


def train_epoch(run: Run, epoch: int, progress: Progress) -> Progress:
    """Train ``epoch`` from ``progress`` on: the progress after its last step."""
    start = progress.batch if progress.epoch == epoch else 0
    progress = open_epoch(progress, epoch)
    bar = _bar(run, epoch, start)
    waited = began = time.perf_counter()
    after = lambda: read_ahead(run.streams, epoch, run.config.epochs, run.rank)  # noqa: E731
    for batch in run.streams["train"].epoch(epoch, start, then=after):
        progress, s = take_step(run, batch, progress, time.perf_counter() - waited)
        waited = time.perf_counter()
        bar.update(1)
        seen = progress.running["seen"]
        bar.set_postfix(loss=f"{s.loss:.4f}", videos_s=f"{seen / (waited - began):.1f}")
    bar.close()
    return progress


def read_ahead(streams: dict, epoch: int, epochs: int, rank: int = 0) -> None:
    """Ask for what the run reads after training epoch ``epoch`` while its last batches train:
    the validation rows, then the next epoch or, after the last, the pass over every row
    (validation and that pass: rank 0's only, the one that evaluates)."""
    after = ("train", epoch + 1) if epoch + 1 < epochs else ("all", 0)
    for name, which in (("val", 0), after):
        if streams.get(name) is not None and (name == "train" or rank == 0):
            streams[name].prefetch(which)


def open_epoch(progress: Progress, epoch: int) -> Progress:
    """``progress`` at the start of (or, resumed, inside) ``epoch``, its running sums set."""
    sums = dict(progress.running) if progress.epoch == epoch else {}
    start = progress.batch if progress.epoch == epoch else 0
    sums.setdefault("loss", 0.0), sums.setdefault("correct", 0), sums.setdefault("seen", 0)
    return Progress(epoch, start, progress.step, progress.history, sums)


def take_step(run: Run, batch, progress: Progress, wait: float) -> tuple[Progress, Any]:
    """One optimizer step on ``batch``: the sums, metrics line and checkpoint it is due."""
    cfg, sums = run.config, progress.running
    s = train_step(run.model, run.opt, run.sched, batch, run.device, cfg, autocast, run.world)
    sums["loss"] += s.loss * s.rows
    sums["correct"] += s.correct
    sums["seen"] += s.rows
    if s.weights is not None:
        before = sums.get("w") or [0.0] * len(s.weights)
        sums["w"] = [a + b for a, b in zip(before, s.weights.tolist(), strict=True)]
    progress = Progress(progress.epoch, batch.index + 1, progress.step + 1, progress.history, sums)
    if progress.step % cfg.log_every == 0:
        run.metrics.write(_metrics(run, progress, s, wait))
    if cfg.checkpoint_every and progress.step % cfg.checkpoint_every == 0:
        run.checkpoint(progress)
    fault_point("after_train_step")  # the kill-and-resume test stops here
    return progress, s


def _bar(run: Run, epoch: int, start: int):
    """A progress bar of the epoch's steps (steps/s, loss, videos/s) on a terminal, rank 0."""
    import sys

    from tqdm import tqdm

    shown = run.config.progress and run.rank == 0 and sys.stderr.isatty()
    total = len(run.streams["train"]) - start
    return tqdm(total=total, unit="step", desc=f"epoch {epoch + 1}", disable=not shown, leave=False)


def _metrics(run: Run, progress: Progress, s, wait: float) -> dict:
    weights = {}
    if s.weights is not None and s.rows:
        weights = {
            e: float(v) / s.rows for e, v in zip(run.data.encoders, s.weights.tolist(), strict=True)
        }
    return {
        "step": progress.step,
        "epoch": progress.epoch + 1,
        "loss": s.loss,
        "lr": run.sched.get_last_lr()[0],
        "grad_norm": s.grad_norm,
        "mixer_weights": weights,
        "data_wait_s": round(wait, 6),
    }


def end_epoch(run: Run, progress: Progress, log: Callable[[str], None], val=_EVALUATE) -> None:
    """Close the epoch: its loss, accuracy and validation accuracy in the history; one line.
    ``val``: the validation accuracy when the caller measured it already (None: no val rows)."""
    sums, history, te = progress.running, progress.history, time.perf_counter()
    loss, acc = sums["loss"] / max(1, sums["seen"]), sums["correct"] / max(1, sums["seen"])
    if val is _EVALUATE:
        val = None
        if run.streams["val"] is not None and run.rank == 0:
            cfg = run.config
            val = evaluate(
                run.model, run.streams["val"], run.device, cfg.precision, autocast,
                cfg.micro_batch_size,
            )[0]  # fmt: skip
    history["loss"].append(loss)
    history["acc"].append(acc)
    history["val"].append(val)
    epoch = progress.epoch + 1
    progress.epoch, progress.batch, progress.running = epoch, 0, {}
    log(
        f"epoch {epoch}/{run.config.epochs} loss {loss:.4f} train_acc {acc:.3f} "
        f"val_acc {'n/a' if val is None else f'{val:.3f}'} lr {run.sched.get_last_lr()[0]:.2e}"
        f"{_fmt_weights(run.data.encoders, sums.get('w'), sums['seen'])} "
        f"{time.perf_counter() - te:.1f}s"
    )


def summarise(run: Run, progress: Progress, over_all=_EVALUATE) -> TrainResult:
    """The run's result; ``over_all``: (accuracy, summed mixer weights, rows) over every row
    when the caller measured it already."""
    weights, w_all, rows = {}, None, 0
    if over_all is not _EVALUATE:
        _, w_all, rows = over_all
    elif run.rank == 0:
        cfg = run.config
        _, w_all, rows = evaluate(
            run.core, run.streams["all"], run.device, cfg.precision, autocast,
            cfg.micro_batch_size,
        )  # fmt: skip
    if w_all is not None:
        weights = {e: float(v) / rows for e, v in zip(run.data.encoders, w_all, strict=True)}
    return TrainResult(
        train_loss=progress.history["loss"],
        train_acc=progress.history["acc"],
        val_acc=progress.history["val"],
        mixer_weights=weights,
        param_counts=run.core.param_counts(),
        seconds=0.0,
        encoders=run.data.encoders,
        classes=run.data.classes,
        n_train=len(run.data.train),
        n_val=len(run.data.val),
        device=str(run.device),
        out=run.config.out,
    )
