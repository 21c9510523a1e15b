"""`merv embed INPUT --model C --out OUT.zarr`: the command line of `jobs.embed` (a trained
model served on new videos by the extract job with a model stage)."""

from __future__ import annotations

import dataclasses

from jobs.embed import FUSED


def add_parser(sub) -> None:
    p = sub.add_parser(
        "embed",
        help="run a trained model on new videos: only its encoders, its fused tokens stored",
        description="Decode new videos once, run only the encoders MODEL reads and MODEL itself, "
        "and store its fused tokens (and its probe's prediction) in a Zarr store, with "
        "extract's inputs, progress, failure rows and resume.",
    )
    p.add_argument("input", help="folder, glob, manifest or tar shards (as merv extract)")
    p.add_argument("--model", required=True, help="a merv train or merv distill output folder")
    p.add_argument("--out", required=True, dest="store", help="the store to create or resume")
    p.add_argument("--config", help="YAML job config (its extract: section)")
    p.add_argument("--address", help="Ray cluster address (default: local in-process Ray)")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="videos per forward (4)")
    p.add_argument("--shard-size", type=int, dest="shard_size", help="videos per shard (32)")
    p.add_argument("--encoder-actors", type=int, dest="encoder_actors", help="actors (1)")
    p.add_argument("--encoder-threads", type=int, dest="encoder_threads", help="torch threads")
    p.add_argument("--encoder-gpus", type=float, dest="encoder_gpus", help="GPUs per actor")
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help="encoder dtype")
    p.add_argument("--weights", help="local weights per encoder: name=/path[,name=/path]")
    p.add_argument(
        "--decode-mode",
        choices=["exact", "fast"],
        dest="decode_mode",
        help="default: as the model's training store was decoded (README: Decoding speed)",
    )
    p.add_argument("--retry-failed", action="store_const", const=True, dest="retry_failed")
    p.add_argument("--no-progress", action="store_const", const=False, dest="progress")
    p.set_defaults(handler=run_embed_cli)


def run_embed_cli(args) -> int:
    from jobs import exits
    from jobs.config import ExtractConfig
    from jobs.extract import run_extract
    from pipeline.config import build_config

    fields = {f.name for f in dataclasses.fields(ExtractConfig)}
    overrides = {k: v for k, v in vars(args).items() if k in fields}
    cfg = build_config(ExtractConfig, args.config, "extract", overrides)
    t = run_extract(cfg)
    print(f"fused tokens of {cfg.model} in {cfg.store} (features/{FUSED}; predictions in the "
          "manifest's prediction column where the model has a probe)")  # fmt: skip
    return exits.failed_verdict(t.failed, t.processed, cfg.max_failed, cfg.store)
