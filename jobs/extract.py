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

import pyarrow as pa
import pyarrow.compute as pc

from jobs.config import ExtractConfig
from jobs.job_ray import JobRay
from jobs.passes import run_passes
from jobs.planning import open_or_create_store, plan_work
from jobs.store_target import check_store_target
from jobs.telemetry import Telemetry
from jobs.writer import ShardWriter
from pipeline import failures
from pipeline.config import ConfigError, to_yaml
from pipeline.decode_settings import EXACT, FAST, DecodeSettings
from pipeline.faults import fault_point
from pipeline.rows import FAILED, TIMING_COLUMNS, work_table
from pipeline.sources import VideoItem, list_videos
from pipeline.store import FeatureStore
from pipeline.store.lock import StoreLock

log = logging.getLogger(__name__)


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
    if not cfg.input or not cfg.store:
        raise ConfigError("extract needs an input (videos, a manifest or tar shards) and --store")
    cfg, names, specs, actor_specs = _job_encoders(cfg)
    items = _list_corpus(cfg)
    with JobRay(cfg.address, cfg.store, echo) as job_ray:
        if cfg.address is not None:  # before anything is planned or written
            job_ray.check_nodes(items)
        return _extract(cfg, names, specs, items, job_ray, echo, on_batch, actor_specs)


def _job_encoders(cfg: ExtractConfig):
    """(config, the store's array names, their specs, the specs the actors build). Extract:
    the encoders of ``cfg.encoders``, stored as they are. Embed (``cfg.model``): the encoders
    the model reads, and one array of its fused tokens, in the model's token layout."""
    from encoders import check_encoders, check_spec_weights, get_spec

    try:
        if cfg.model:
            from jobs.embed import FUSED, embed_plan

            plan = embed_plan(cfg.model)
            if not cfg.random_weights:
                check_spec_weights(plan.encoder_specs, cfg.weights)
            cfg = dataclasses.replace(cfg, time_steps=plan.time_steps, grid=plan.grid)
            if not cfg.decode_mode and plan.decode:  # decode as the model's features were
                cfg = dataclasses.replace(
                    cfg,
                    decode_mode=plan.decode["mode"],
                    decode_short_side=plan.decode["short_side"],
                )
            return cfg, [FUSED], [plan.store_spec], plan.encoder_specs
        # registers the config's own encoders; a missing checkpoint fails here, in one line
        # (random weights: nothing to load, so nothing to find)
        names = check_encoders(
            cfg.encoders, cfg.custom_encoders, cfg.weights, check_weights=not cfg.random_weights
        )
    except ValueError as err:
        raise ConfigError(f"--{'model' if cfg.model else 'encoders'}: {err}") from err
    specs = [get_spec(n) for n in names]
    return cfg, names, specs, specs


def _extract(cfg: ExtractConfig, names, specs, items, job_ray: JobRay, echo, on_batch, actor_specs):
    """Plan the store, run what is left through Ray, consolidate, summarise."""
    decode = decode_settings(cfg, actor_specs)  # resolved into the config the job saves
    cfg = dataclasses.replace(cfg, decode_mode=decode.mode, decode_short_side=decode.short_side)
    store, new_videos, added = open_or_create_store(
        cfg.store,
        items,
        specs,
        cfg.shard_size,
        cfg.time_steps,
        cfg.grid,
        cfg.num_frames,
        overwrite=tuple(cfg.overwrite_encoders),
        decode_tag=decode.fingerprint_tag(),
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
        job_ray.start()
        cfg = _resolve_gpus(cfg)
        run_passes(cfg, todo, actor_specs, writer, telemetry, on_batch, job_ray.console)
    if writer.open_shards:
        raise RuntimeError(f"shards {writer.open_shards} did not receive every row")
    fault_point("before_consolidate")
    store.consolidate_manifest()
    telemetry.finish(writer.write_s)
    _write_json(store, "extract_summary.json", telemetry.summary())
    echo(telemetry.report())
    return telemetry


def decode_settings(cfg: ExtractConfig, specs: list) -> DecodeSettings:
    """The job's decoding: its mode, fast mode's frame size (default 2x the largest input of the
    encoders the actors run) and threads; a fast size below an encoder's input is refused."""
    sizes = [s.image_size for s in specs]
    decode = DecodeSettings.for_encoders(
        cfg.decode_mode or EXACT, cfg.decode_short_side, cfg.decode_threads, sizes
    )
    if decode.mode == FAST and decode.short_side < max(sizes, default=0):
        raise ConfigError(
            f"decode_short_side: {decode.short_side} is below the {max(sizes)}-pixel input of "
            "the job's encoders, which would then enlarge frames; use at least that (0: twice it)"
        )
    return decode


def _save_effective_config(store: FeatureStore, cfg: ExtractConfig, echo) -> None:
    text = to_yaml(dataclasses.replace(cfg, break_lock=False), "extract")  # never replayed
    echo("effective config:\n" + text.rstrip())
    store.write_job_file("extract.yaml", text.encode())


def _write_json(store: FeatureStore, name: str, data: dict) -> None:
    store.write_job_file(name, json.dumps(data, indent=2).encode())
