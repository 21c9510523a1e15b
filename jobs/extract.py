"""`merv extract`: run every frozen encoder once over a corpus into a sharded Zarr store.

Data path (one way): list + plan (driver) -> decode (Ray CPU tasks) -> encode + align (Ray
actor pool holding all encoders) -> write (driver, the single writer of every shard). A shard is
written whole, with its manifest rows, and then its commit marker; a rerun skips committed
shards, so an interrupted job resumes where it stopped.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from dataclasses import dataclass, field

import numpy as np

from jobs.config import ConfigError, ExtractConfig, to_yaml
from pipeline.corpus import ShardPlan, VideoItem, list_videos, plan_shards
from pipeline.store import FeatureStore, StoreError

log = logging.getLogger(__name__)

MANIFEST_KEYS = ("n_frames", "fps", "duration", "height", "width", "decoder")


@dataclass
class ExtractSummary:
    store: str
    videos: int
    processed: int
    ok: int
    failed: int
    skipped_shards: int
    seconds: float
    videos_per_s: float
    decode_s: float = 0.0
    encode_s: float = 0.0
    write_s: float = 0.0
    failures: dict[str, str] = field(default_factory=dict)


def init_ray(address: str | None) -> bool:
    """Connect to (or start) Ray; True when this call started it, so the caller shuts it down."""
    import ray

    if ray.is_initialized():
        return False
    # Quiet, local by default; an address joins an existing cluster (`ray start --head`).
    ray.init(address=address, include_dashboard=False, log_to_driver=False,
             logging_level=logging.WARNING, configure_logging=True)
    return True


def _open_or_create(cfg: ExtractConfig, plan: ShardPlan, specs: list) -> FeatureStore:
    encoders = {s.name: (s.width, {**s.to_dict(), "fingerprint": s.fingerprint()}) for s in specs}
    if not FeatureStore.exists(cfg.store):
        return FeatureStore.create(cfg.store, plan.video_ids, encoders, plan.shard_size,
                                   cfg.time_steps, cfg.grid, attrs={"num_frames": cfg.num_frames})
    store = FeatureStore.open(cfg.store, mode="r+")
    if store.video_ids != list(plan.video_ids) or store.shard_size != plan.shard_size:
        raise StoreError(
            f"store {cfg.store} was made from a different corpus or shard size; "
            "use a new --store (adding videos to a store is not supported yet)")
    if store.encoders != list(encoders):
        raise StoreError(f"store {cfg.store} holds encoders {store.encoders}, this job asks for "
                         f"{list(encoders)}; use a new --store")
    for name, (_, spec) in encoders.items():
        have = store.encoder_attrs(name).get("fingerprint")
        if have != spec["fingerprint"]:
            raise StoreError(f"store {cfg.store}: encoder {name} was extracted with spec "
                             f"{have}, this job has {spec['fingerprint']}; use a new --store")
    return store


class _ShardAssembler:
    """Collects rows per shard on the driver and writes each shard once it is complete."""

    def __init__(self, store: FeatureStore, plan: ShardPlan):
        self.store, self.plan = store, plan
        self.pending: dict[int, dict[int, dict]] = {}
        self.write_s = 0.0

    def add(self, row: dict) -> None:
        shard = self.plan.shard_of(row["row"])
        rows = self.pending.setdefault(shard, {})
        rows[row["row"]] = row
        if len(rows) == len(self.plan.shard_rows(shard)):
            self._write(shard, self.pending.pop(shard))

    def _write(self, shard: int, rows: dict[int, dict]) -> None:
        start = time.perf_counter()
        ordered = [rows[r] for r in self.plan.shard_rows(shard)]
        features = {}
        for name in self.store.encoders:
            block = np.stack([r[f"feat:{name}"] for r in ordered])
            block[[r["status"] != "ok" for r in ordered]] = 0  # failed rows stay empty
            features[name] = block
        manifest = [{
            "row": r["row"], "video_id": r["video_id"], "source": r["source"],
            "status": r["status"], "error": r["error"] or None,
            **{k: r[k].item() if hasattr(r[k], "item") else r[k] for k in MANIFEST_KEYS},
            "sampled_indices": r["sampled_indices"].tolist() if r["status"] == "ok" else None,
            "timestamps": r["timestamps"].tolist() if r["status"] == "ok" else None,
            **json.loads(str(r["extra"])),  # manifest columns carried from the input (labels, ...)
        } for r in ordered]
        self.store.write_shard(shard, features, manifest)
        self.write_s += time.perf_counter() - start


def _work_row(row: int, item: VideoItem) -> dict:
    """One unit of decode work; plain scalars so Ray Data keeps it in Arrow columns."""
    return {"row": row, "video_id": item.video_id, "source": item.source,
            "start": item.start if item.start is not None else float("nan"),
            "end": item.end if item.end is not None else float("nan"),
            "extra": json.dumps(item.extra, sort_keys=True, default=str)}


def _build_dataset(cfg: ExtractConfig, todo: list[dict], specs: list):
    import ray
    from ray.data import ActorPoolStrategy, DataContext, TaskPoolStrategy

    from jobs.workers import EncoderActor, decode_batch

    ctx = DataContext.get_current()
    ctx.enable_operator_progress_bars = False  # we draw our own bar with videos/s and failures
    ctx.enable_progress_bars = False
    ctx.print_on_execution_start = False
    for name in ("ray.data", "ray.data._internal.progress"):  # our bar replaces theirs
        logging.getLogger(name).setLevel(logging.ERROR)
    use_gpu = bool(cfg.encoder_gpus)
    ds = ray.data.from_items(todo, override_num_blocks=max(1, len(todo)))
    decode_opts = {"compute": TaskPoolStrategy(size=cfg.decode_workers)} if cfg.decode_workers else {}
    # The memory reservation bounds concurrent decodes (32 full-resolution frames each) and,
    # being a resource the encoder stage does not ask for, keeps Ray Data from fusing decode
    # into the encoder actor, which would serialise decoding and encoding on one worker.
    ds = ds.map_batches(decode_batch, batch_size=1, num_cpus=1, batch_format="numpy",
                        memory=cfg.decode_memory_mb * 2**20,
                        fn_kwargs={"num_frames": cfg.num_frames}, **decode_opts)
    return ds.map_batches(
        EncoderActor,
        fn_constructor_kwargs={
            "encoders": [s.to_dict() for s in specs], "weights": cfg.weights, "dtype": cfg.dtype, "use_gpu": use_gpu,
            "cpu_threads": max(1, int(cfg.encoder_cpus)), "time_steps": cfg.time_steps,
            "grid": cfg.grid,
        },
        batch_size=cfg.batch_size, batch_format="numpy",
        compute=ActorPoolStrategy(size=cfg.encoder_actors),
        num_cpus=cfg.encoder_cpus, num_gpus=cfg.encoder_gpus or 0,
    )


def _resolve_gpus(cfg: ExtractConfig) -> ExtractConfig:
    if cfg.encoder_gpus is not None:
        return cfg
    import torch

    return dataclasses.replace(cfg, encoder_gpus=1.0 if torch.cuda.is_available() else 0.0)


def run_extract(cfg: ExtractConfig, echo=print) -> ExtractSummary:
    from encoders import get_spec, resolve_encoder_set

    if not cfg.input or not cfg.store:
        raise ConfigError("extract needs an input (folder or glob) and --store")
    cfg = _resolve_gpus(cfg)
    try:
        names = resolve_encoder_set(cfg.encoders)
    except ValueError as err:
        raise ConfigError(f"--encoders {cfg.encoders!r}: {err}") from err
    specs = [get_spec(n) for n in names]
    items = list_videos(cfg.input, all_files=cfg.all_files)
    if not items:
        raise ConfigError(f"no videos found in {cfg.input}")
    plan = plan_shards(items, cfg.shard_size)
    by_id = {it.video_id: it for it in items}
    store = _open_or_create(cfg, plan, specs)
    _save_effective_config(store, cfg, echo)

    done = store.committed_shards()
    todo = [_work_row(r, by_id[plan.video_ids[r]])
            for s in range(plan.num_shards) if s not in done for r in plan.shard_rows(s)]
    echo(f"{len(items)} videos, {plan.num_shards} shards of {plan.shard_size}; "
         f"{len(done)} shards already committed, {len(todo)} videos to process; "
         f"encoders: {', '.join(names)}")
    start = time.perf_counter()
    assembler = _ShardAssembler(store, plan)
    stats = {"ok": 0, "failed": 0, "decode_s": 0.0, "encode_s": 0.0}
    failures: dict[str, str] = {}
    if todo:
        started_ray = init_ray(cfg.address)
        try:
            _consume(_build_dataset(cfg, todo, specs), assembler, stats, failures,
                     _progress(len(todo), cfg.progress))
        finally:
            if started_ray:
                import ray

                ray.shutdown()
        if assembler.pending:
            raise StoreError(f"shards {sorted(assembler.pending)} did not receive every row")
    store.consolidate_manifest()
    seconds = time.perf_counter() - start
    summary = ExtractSummary(
        store=cfg.store, videos=len(items), processed=len(todo), ok=stats["ok"],
        failed=stats["failed"], skipped_shards=len(done), seconds=round(seconds, 3),
        videos_per_s=round(len(todo) / seconds, 3) if todo and seconds > 0 else 0.0,
        decode_s=round(stats["decode_s"], 3), encode_s=round(stats["encode_s"], 3),
        write_s=round(assembler.write_s, 3), failures=failures,
    )
    _write_summary(store, summary)
    echo(f"done: {summary.ok} ok, {summary.failed} failed of {summary.processed} processed "
         f"in {summary.seconds:.1f}s ({summary.videos_per_s:.2f} videos/s)")
    for vid, reason in sorted(failures.items()):
        echo(f"  failed {vid}: {reason}")
    return summary


def _consume(dataset, assembler: _ShardAssembler, stats: dict, failures: dict, bar) -> None:
    """Drain the dataset on the driver: count, record failures, hand rows to the writer."""
    for batch in dataset.iter_batches(batch_size=None, batch_format="numpy"):
        for i in range(len(batch["row"])):
            row = {k: v[i] for k, v in batch.items()}
            row["row"] = int(row["row"])
            row["status"], row["error"] = str(row["status"]), str(row["error"])
            stats[row["status"]] += 1
            stats["decode_s"] += float(row["decode_s"])
            stats["encode_s"] += float(row["encode_s"])
            if row["status"] != "ok":
                failures[str(row["video_id"])] = row["error"]
            assembler.add(row)
        bar.update(len(batch["row"]))
        bar.set_postfix(failed=stats["failed"])
    bar.close()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, unit="video", desc="extract", disable=not enabled, smoothing=0.1)


def _save_effective_config(store: FeatureStore, cfg: ExtractConfig, echo) -> None:
    text = to_yaml(cfg, "extract")
    echo("effective config:\n" + text.rstrip())
    store.fs.makedirs(store._path("_jobs"), exist_ok=True)
    with store.fs.open(store._path("_jobs", "extract.yaml"), "w") as f:
        f.write(text)


def _write_summary(store: FeatureStore, summary: ExtractSummary) -> None:
    with store.fs.open(store._path("_jobs", "extract_summary.json"), "w") as f:
        f.write(json.dumps(dataclasses.asdict(summary), indent=2))

