"""`merv extract`: run every frozen encoder once over a corpus into a sharded Zarr store.

Data path (one way): list + plan (driver) -> decode (Ray CPU tasks) -> encode + align (Ray
actor pool holding all encoders) -> write (driver, the single writer of every shard). A shard is
written whole, with its manifest rows, then its commit markers; a rerun plans from the markers,
so an interrupted job resumes where it stopped and a finished one does nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os

import pyarrow as pa
import pyarrow.compute as pc

from jobs.config import ExtractConfig
from jobs.planning import open_or_create_store, plan_work
from jobs.poison import decode_task_options, decode_with_retries
from jobs.store_target import check_store_target
from jobs.telemetry import Telemetry
from jobs.writer import ShardWriter
from pipeline import failures
from pipeline.config import ConfigError, to_yaml
from pipeline.faults import fault_point
from pipeline.rows import FAILED, TIMING_COLUMNS, work_table
from pipeline.sources import VideoItem, list_videos
from pipeline.store import FeatureStore
from pipeline.store.lock import StoreLock

log = logging.getLogger(__name__)


def init_ray(address: str | None) -> bool:
    """Connect to (or start) Ray; True when this call started it, so the caller shuts it down."""
    if address is None:
        # A local in-process cluster listens on loopback only (Ray's macOS default): nothing
        # on the network can reach it. Read when ray is first imported.
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    import ray

    if ray.is_initialized():
        return False
    # Quiet, local by default; an address joins an existing cluster (`ray start --head`).
    ray.init(
        address=address,
        include_dashboard=False,
        log_to_driver=False,
        logging_level=logging.WARNING,
        configure_logging=True,
    )
    return True


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
        fn_kwargs={"num_frames": cfg.num_frames, "read_timeout_s": cfg.read_timeout_s},
        **decode_opts,
        **decode_task_options(retries),
    )
    return ds.map_batches(
        EncoderActor,
        fn_constructor_kwargs={
            "encoders": [s.to_dict() for s in specs],
            "weights": cfg.weights,
            "dtype": cfg.dtype,
            "use_gpu": use_gpu,
            "cpu_threads": cfg.encoder_threads or max(1, int(cfg.encoder_cpus)),
            "time_steps": cfg.time_steps,
            "grid": cfg.grid,
            "batch_size": cfg.batch_size,
            "random_weights": cfg.random_weights,
        },
        batch_size=cfg.batch_size,
        batch_format="numpy",
        compute=ActorPoolStrategy(size=cfg.encoder_actors),
        num_cpus=cfg.encoder_cpus,
        num_gpus=cfg.encoder_gpus or 0,
    )


def _resolve_gpus(cfg: ExtractConfig) -> ExtractConfig:
    """Default: one GPU per encoder actor when the cluster has GPUs (the driver may have none)."""
    if cfg.encoder_gpus is not None:
        return cfg
    import ray

    has_gpus = ray.cluster_resources().get("GPU", 0) > 0
    return dataclasses.replace(cfg, encoder_gpus=1.0 if has_gpus else 0.0)


def _list_corpus(cfg: ExtractConfig) -> list[VideoItem]:
    """The job's input, listed (``pipeline.sources.list_videos``); an empty one is refused."""
    items = list_videos(
        cfg.input,
        all_files=cfg.all_files,
        video_root=cfg.video_root,
        storage_options=cfg.storage_options,
        exclude=[cfg.store],  # a store inside the input folder is never its own input
    )
    if not items:
        raise ConfigError(f"no videos found in {cfg.input}")
    return items


def _record_missing(todo: pa.Table, writer: ShardWriter, telemetry: Telemetry) -> pa.Table:
    """Hand the rows without a source to the writer as failed; the rows left to decode."""
    has_source = pc.not_equal(todo.column("source"), "")
    for row in todo.filter(pc.invert(has_source)).to_pylist():
        writer.add(telemetry.record(_no_source(row)))
    return todo.filter(has_source)


def _no_source(row: dict) -> dict:
    """A store row the input no longer has: failed as missing, never decoded."""
    return {
        **row,
        "extra": json.loads(row["extra"]),
        "status": FAILED,
        **dict.fromkeys(TIMING_COLUMNS, 0.0),
        "error": f"{failures.MISSING}: the store has this video but this job's input does not",
    }


def _holding_store_lock(run):
    """Run the job holding the store's one-writer lock (taken before the store is planned or
    opened for writing, renewed while it runs, released however it ends)."""

    @functools.wraps(run)
    def locked(cfg: ExtractConfig, *args, **kwargs):
        if not cfg.store:
            return run(cfg, *args, **kwargs)  # refused there, in one line
        check_store_target(cfg.store)  # a file or a foreign folder: one line, before the lock
        with StoreLock(cfg.store, lease_s=cfg.lock_lease_s, break_lock=cfg.break_lock):
            return run(cfg, *args, **kwargs)

    return locked


@_holding_store_lock
def run_extract(cfg: ExtractConfig, echo=print, on_batch=None) -> Telemetry:
    """Run (or resume) an extraction job; ``on_batch(telemetry)`` is called after each batch."""
    from encoders import check_encoders, get_spec

    if not cfg.input or not cfg.store:
        raise ConfigError("extract needs an input (videos, a manifest or tar shards) and --store")
    try:
        # registers the config's own encoders; a missing checkpoint fails here, in one line
        # (random weights: nothing to load, so nothing to find)
        names = check_encoders(
            cfg.encoders, cfg.custom_encoders, cfg.weights, check_weights=not cfg.random_weights
        )
    except ValueError as err:
        raise ConfigError(f"--encoders {cfg.encoders!r}: {err}") from err
    specs = [get_spec(n) for n in names]
    items = _list_corpus(cfg)
    store, new_videos, added = open_or_create_store(
        cfg.store,
        items,
        specs,
        cfg.shard_size,
        cfg.time_steps,
        cfg.grid,
        cfg.num_frames,
        overwrite=tuple(cfg.overwrite_encoders),
    )
    fault_point("after_create")
    _save_effective_config(store, cfg, echo)
    plan, work, missing = plan_work(store, items, names, retry_failed=cfg.retry_failed)
    todo = work_table(work, plan.video_ids, items)
    echo(
        f"{len(items)} videos in the input, {plan.num_rows} rows in the store "
        f"({new_videos} new), {plan.num_shards} shards of {plan.shard_size}; encoders "
        f"{', '.join(names)}{f' (added: {chr(44).join(added)})' if added else ''}; "
        f"{todo.num_rows} videos to process in {len(work)} shards"
    )
    telemetry = Telemetry(store=cfg.store, videos=len(items), planned=todo.num_rows)
    writer = ShardWriter(store, plan, work)
    if missing:  # rows the store has but the input lacks: recorded as failed, never decoded
        todo = _record_missing(todo, writer, telemetry)
    if todo.num_rows:
        started_ray = init_ray(cfg.address)
        try:
            cfg = _resolve_gpus(cfg)
            _run_passes(cfg, todo, specs, writer, telemetry, on_batch)
        finally:
            if started_ray:
                import ray

                ray.shutdown()
    if writer.open_shards:
        raise RuntimeError(f"shards {writer.open_shards} did not receive every row")
    fault_point("before_consolidate")
    store.consolidate_manifest()
    telemetry.finish(writer.write_s)
    _write_json(store, "extract_summary.json", telemetry.summary())
    echo(telemetry.report())
    return telemetry


def _run_passes(cfg: ExtractConfig, todo: pa.Table, specs, writer, telemetry, on_batch) -> None:
    """Decode and encode ``todo``; a video that kills its worker is retried a bounded number
    of times, then recorded failed (``jobs.poison``)."""
    bar = _progress(todo.num_rows, cfg.progress)

    def run_pass(rows: pa.Table, per_block: int, retries: int) -> set[int]:
        dataset = _build_dataset(cfg, rows, specs, per_block, retries)
        return _consume(dataset, writer, telemetry, bar, on_batch)

    record = lambda row: writer.add(telemetry.record(row))  # noqa: E731
    decode_with_retries(todo, cfg.max_video_retries, run_pass, record)
    bar.close()


def _consume(dataset, writer: ShardWriter, telemetry: Telemetry, bar, on_batch) -> set[int]:
    """Drain the dataset on the driver: count, record failures, hand rows to the writer; the
    row numbers received."""
    got: set[int] = set()
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        n = len(batch["row"])
        for i in range(n):
            row = {k: v[i] for k, v in batch.items()}
            row["row"] = int(row["row"])
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
    return got


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc="extract", disable=not enabled, smoothing=0.1)


def _save_effective_config(store: FeatureStore, cfg: ExtractConfig, echo) -> None:
    text = to_yaml(dataclasses.replace(cfg, break_lock=False), "extract")  # never replayed
    echo("effective config:\n" + text.rstrip())
    store.write_job_file("extract.yaml", text.encode())


def _write_json(store: FeatureStore, name: str, data: dict) -> None:
    store.write_job_file(name, json.dumps(data, indent=2).encode())
