"""The Ray part of an extract job: build the dataset (decode tasks, then the encoder actor
pool), drain it on the driver into the single writer, and redo the rows a crashed worker lost.

Data path: work rows (plan order) -> ``decode_batch`` (Ray CPU tasks, one block each) ->
``EncoderActor`` (an actor pool holding every encoder) -> ``ShardWriter.add`` on the driver.
"""

from __future__ import annotations

import json
import logging

import pyarrow as pa

from jobs.config import ExtractConfig
from jobs.poison import decode_task_options, decode_with_retries, missing_rows
from jobs.progress import progress_bar
from jobs.telemetry import Telemetry
from jobs.writer import ShardWriter
from pipeline.faults import fault_point

log = logging.getLogger(__name__)

LOST_NODE_RERUNS = 3  # passes redone after a lost node, before the rows left go one by one


def run_passes(
    cfg: ExtractConfig, todo: pa.Table, specs, writer, telemetry, on_batch, console
) -> None:
    """Decode and encode ``todo``; a video that kills its worker is retried a bounded number
    of times, then recorded failed (``jobs.poison``). Progress goes to ``console``."""
    bar = progress_bar(todo.num_rows, cfg.progress, console)

    def run_pass(rows: pa.Table, per_block: int, retries: int) -> set[int]:
        got: set[int] = set()
        for _ in range(1 + LOST_NODE_RERUNS):
            left = missing_rows(rows, got)
            try:
                dataset = _build_dataset(cfg, left, specs, per_block, retries)
                _consume(dataset, writer, telemetry, bar, on_batch, got)
                break
            except Exception as err:
                if not lost_a_node(err):
                    raise
                print(
                    f"merv: warning: a Ray node was lost mid-job ({type(err).__name__}); "
                    f"redoing the {rows.num_rows - len(got)} videos not received yet",
                    file=console,
                )
        return got  # rows still missing: jobs.poison redoes them one by one

    record = lambda row: writer.add(telemetry.record(row))  # noqa: E731
    decode_with_retries(todo, cfg.max_video_retries, run_pass, record)
    bar.close()


def lost_a_node(err: BaseException) -> bool:
    """Did the pass die because a node (and the objects or tasks on it) went away? Not
    because of the job's own code or config, which would fail the same way again."""
    from ray.exceptions import NodeDiedError, ObjectLostError, RaySystemError

    lost = (NodeDiedError, ObjectLostError)
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        # a re-executed decode task whose output objects were on the lost node
        replay = isinstance(err, RaySystemError) and "re-executed" in str(err)
        if isinstance(err, lost) or replay:
            return True
        err = getattr(err, "cause", None) or err.__cause__
    return False


def _consume(dataset, writer: ShardWriter, telemetry: Telemetry, bar, on_batch, got: set[int]):
    """Drain the dataset on the driver: count, record failures, hand rows to the writer, add
    the row numbers received to ``got`` (a row seen before, replayed by Ray, is dropped)."""
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        n = len(batch["row"])
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            row["row"] = int(row["row"])
            if row["row"] in got:
                n -= 1
                continue
            got.add(row["row"])
            row["status"], row["error"] = str(row["status"]), str(row["error"])
            row["extra"] = json.loads(str(row["extra"]))
            writer.add(telemetry.record(row))
            fault_point("after_row")
        telemetry.batch_done(n, writer.write_s)
        bar.update(n)
        bar.set_postfix(failed=telemetry.failed)
        if on_batch:
            on_batch(telemetry)


def _build_dataset(cfg: ExtractConfig, todo: pa.Table, specs: list, per_block=0, retries=0):
    import ray
    from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

    from jobs.workers import EncoderActor, decode_batch

    ctx = DataContext.get_current()
    ctx.enable_operator_progress_bars = False  # we draw our own bar with videos/s and failures
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    # Rows reach the writer in plan order, so shards complete one after another and the
    # driver buffers about one shard at a time, whatever the corpus size.
    ctx.execution_options.preserve_order = True
    for name in ("ray.data", "ray.data._internal.progress"):
        logging.getLogger(name).setLevel(logging.ERROR)
    if not log.isEnabledFor(logging.DEBUG):  # a worker's error reaches the CLI as one line
        logging.getLogger("ray.data.exceptions").setLevel(logging.CRITICAL)
    use_gpu = bool(cfg.encoder_gpus)
    # Blocks of one encoder batch: a block is decoded by one task, so decode parallelism comes
    # from the number of blocks (capped, so a huge corpus does not become millions of objects).
    rows_per_block = per_block or max(cfg.batch_size, -(-todo.num_rows // 100_000))
    ctx.max_errored_blocks = -1  # a crashed block's rows are redone by jobs/poison.py
    ds = ray.data.from_arrow(
        [todo.slice(i, rows_per_block) for i in range(0, todo.num_rows, rows_per_block)]
    )
    decode_opts = (
        {"compute": TaskPoolStrategy(size=cfg.decode_workers)} if cfg.decode_workers else {}
    )
    # The memory reservation bounds concurrent decodes (32 full-resolution frames each) and,
    # being a resource the encoder stage does not ask for, keeps Ray Data from fusing decode
    # into the encoder actor, which would serialise decoding and encoding on one worker.
    ds = ds.map_batches(
        decode_batch,
        batch_size=1,
        num_cpus=1,
        batch_format="numpy",
        memory=cfg.decode_memory_mb * 2**20,
        fn_kwargs={
            "num_frames": cfg.num_frames,
            "read_timeout_s": cfg.read_timeout_s,
            "decode": {
                "mode": cfg.decode_mode or "exact",
                "short_side": cfg.decode_short_side,
                "threads": cfg.decode_threads,
            },
        },
        **decode_opts,
        **decode_task_options(retries),
    )
    return ds.map_batches(
        EncoderActor,
        fn_constructor_kwargs=_actor_kwargs(cfg, specs, use_gpu),
        batch_size=cfg.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=cfg.encoder_actors),
        num_cpus=cfg.encoder_cpus,
        num_gpus=cfg.encoder_gpus or 0,
    )


def _actor_kwargs(cfg: ExtractConfig, specs: list, use_gpu: bool) -> dict:
    """What each encoder actor is built from (`jobs.workers.EncoderActor`)."""
    from jobs.embed import embed_plan

    return {
        "encoders": [s.to_dict() for s in specs],
        "weights": cfg.weights,
        "dtype": cfg.dtype,
        "use_gpu": use_gpu,
        "cpu_threads": cfg.encoder_threads or max(1, int(cfg.encoder_cpus)),
        "time_steps": cfg.time_steps,
        "grid": cfg.grid,
        "batch_size": cfg.batch_size,
        "random_weights": cfg.random_weights,
        "model": embed_plan(cfg.model).actor if cfg.model else None,
    }
