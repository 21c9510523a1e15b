"""The `merv` command line: extract, status, encoders, train, demo."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys

from jobs import (
    ablate,
    cost_cmd,
    distill_cmd,
    embed_cmd,
    exits,
    explain_cmd,
    lm_cmd,
    train_cmd,
    verify,
)
from jobs.config import EPILOG, ExtractConfig
from pipeline.config import ConfigError, build_config

_RETRIES = "retries of a video that kills its decode worker, then it fails worker-crash (2)"


def _add_extract(sub) -> None:
    p = sub.add_parser(
        "extract",
        help="run every frozen encoder once over a corpus into a Zarr store",
        description="Decode each video once, run every encoder of SET on it, align to "
        "[T, GxG] and write float16 features into a sharded Zarr v3 store. Reruns resume.",
        epilog=f"{EPILOG} {exits.EXIT_CODES_HELP}.",
    )
    p.add_argument(
        "input",
        nargs="?",
        help="folder, glob, manifest (CSV/Parquet/JSONL/LLaVA "
        "JSON) or WebDataset tars; local or any fsspec URL (docs/inputs.md)",
    )
    p.add_argument("--store", help="path or fsspec URL of the feature store to create or resume")
    p.add_argument("--encoders", help="merv (default, full size), tiny, or a comma list of names")
    p.add_argument("--config", help="YAML job config")
    p.add_argument("--address", help="Ray cluster address (default: local in-process Ray)")
    p.add_argument("--shard-size", type=int, dest="shard_size", help="videos per shard (32)")
    p.add_argument("--batch-size", type=int, dest="batch_size", help="videos per encoder batch (4)")
    _add_extract_resources(p)
    _add_extract_inputs(p)
    p.add_argument("--no-progress", action="store_const", const=False, dest="progress")
    p.add_argument(
        "--max-failed",
        dest="max_failed",
        metavar="N|F",
        help="exit with code 3 when more videos fail than this: a count (5) or a fraction of "
        "the videos processed (0.05 or 5%%); default: failed videos never fail the job",
    )
    p.add_argument(
        "--break-lock",
        action="store_const",
        const=True,
        dest="break_lock",
        help="remove the store's lock first: only when the job holding it is known dead",
    )


def _add_extract_resources(p) -> None:
    """How much of the cluster the job uses: actors, threads, GPUs, decode tasks, dtype."""
    p.add_argument("--encoder-actors", type=int, dest="encoder_actors", help="encoder actors (1)")
    p.add_argument(
        "--encoder-threads",
        type=int,
        dest="encoder_threads",
        help="torch threads per encoder actor (default: its reserved CPUs); on a "
        "CPU-only machine, the core count lets it use what decoding leaves idle",
    )
    p.add_argument(
        "--encoder-gpus",
        type=float,
        dest="encoder_gpus",
        help="GPUs per encoder actor, fractional allowed (default: 1 if CUDA, else 0)",
    )
    p.add_argument(
        "--decode-workers",
        type=int,
        dest="decode_workers",
        help="concurrent decode tasks (default: all free CPUs)",
    )
    p.add_argument(
        "--decode-mode",
        choices=["exact", "fast"],
        dest="decode_mode",
        help="exact: frames at their coded size (up to 1080p), as the reference decodes them "
        "(default); fast: shrunk in the decoder to the encoders' need (README: Decoding speed)",
    )
    p.add_argument(
        "--decode-short-side",
        type=int,
        dest="decode_short_side",
        help="fast mode's frame short side (default: twice the largest encoder input)",
    )
    p.add_argument(
        "--decode-threads",
        type=int,
        dest="decode_threads",
        help="decoder threads per decode task (1; 0 = FFmpeg's choice)",
    )
    p.add_argument("--max-video-retries", type=int, dest="max_video_retries", help=_RETRIES)
    p.add_argument("--dtype", choices=["auto", "fp32", "bf16", "fp16"], help="encoder dtype")
    p.add_argument("--weights", help="local weights per encoder: name=/path[,name=/path]")


def _add_extract_inputs(p) -> None:
    """Which inputs to list and which earlier results to redo."""
    p.add_argument(
        "--all-files",
        action="store_const",
        const=True,
        dest="all_files",
        help="also list files without a video extension (they fail with a reason)",
    )
    p.add_argument(
        "--video-root",
        dest="video_root",
        help="folder or URL that relative manifest paths are under",
    )
    p.add_argument(
        "--storage-options",
        dest="storage_options",
        metavar="K=V[,K=V]",
        help="fsspec options for input URLs, e.g. endpoint_url=http://host:9000",
    )
    p.add_argument(
        "--retry-failed",
        action="store_const",
        const=True,
        dest="retry_failed",
        help="recompute the rows that failed in earlier runs",
    )
    p.add_argument(
        "--overwrite-encoder",
        action="append",
        dest="overwrite_encoders",
        metavar="NAME",
        help="re-extract NAME whose spec changed (repeatable)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="merv", description="MERV feature-precompute pipeline: extract once, train cheaply."
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--debug", action="store_true", help="print the traceback of an error, not just its line"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_extract(sub)
    p = sub.add_parser(
        "status",
        help="rows per encoder done / failed / pending",
        description="Summarise a feature store: rows, shards, fingerprints, failures.",
    )
    p.add_argument("store")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--failed", action="store_true", help="list only the failed videos and why")
    verify.add_parser(sub)
    p = sub.add_parser(
        "encoders",
        help="list registered encoders",
        description="List every registered encoder, or load one and run a clip.",
    )
    p.add_argument("--check", metavar="NAME", help="load NAME and encode one synthetic clip")
    p.add_argument("--weights", help="local weights path for --check")
    p.add_argument(
        "--config", help="YAML job config: also list its custom_encoders, use its weights"
    )
    train_cmd.add_parser(sub)
    lm_cmd.add_parsers(sub)
    ablate.add_parser(sub)
    explain_cmd.add_parser(sub)
    cost_cmd.add_parser(sub)
    distill_cmd.add_parser(sub)
    embed_cmd.add_parser(sub)
    p = sub.add_parser(
        "demo",
        help="synthetic corpus -> tiny encoders -> ablation, distillation, LM alignment, offline",
        description="Generate a labelled synthetic corpus, extract it with the tiny "
        "encoders on local Ray, run a small ablation over the cache (the four encoders with "
        "two fusions, each alone; 2 seeds), print its table and where its report is; distil "
        "the four-encoder run into every subset of its encoders; align a frozen tiny Llama on "
        "the cache and caption the held-out videos.",
    )
    p.add_argument("--out", default="demo_out", help="working folder (default: demo_out)")
    p.add_argument("--per-class", type=int, default=48, dest="per_class", help="clips per class")
    p.add_argument("--epochs", type=int, default=30)
    return parser


def run(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    if args.command == "extract":
        from jobs.extract import run_extract

        # every flag of `extract` is named after its ExtractConfig field (None: not given)
        fields = {f.name for f in dataclasses.fields(ExtractConfig)}
        overrides = {k: v for k, v in vars(args).items() if k in fields}
        cfg = build_config(ExtractConfig, args.config, "extract", overrides)
        try:
            t = run_extract(cfg)
        except OSError as err:
            err.merv_store = cfg.store  # named in its one line (a full disk's is the store's)
            raise
        return exits.failed_verdict(t.failed, t.processed, cfg.max_failed, cfg.store)
    if args.command == "status":
        from jobs.status import print_status

        print_status(args.store, args.json, args.failed)
        return 0
    if hasattr(args, "handler"):  # a subcommand that dispatches itself (verify, eval, ...)
        try:
            return args.handler(args)
        except ValueError as err:  # the data, the text or a checkpoint do not fit
            raise ConfigError(str(err)) from err
    if args.command == "encoders":
        from jobs.encoders_cmd import check_encoder, list_encoders

        if args.check:
            return check_encoder(args.check, args.weights, args.config)
        return list_encoders(args.config)
    if args.command == "train":
        from jobs.train_cmd import run_train, train_config

        try:
            run_train(train_config(args))
        except ValueError as err:  # the data, labels or a checkpoint do not fit the run
            raise ConfigError(str(err)) from err
        return 0
    if args.command == "demo":
        from jobs.demo import run_demo

        run_demo(args.out, per_class=args.per_class, epochs=args.epochs)
        return 0
    raise AssertionError(args.command)


def main(argv: list[str] | None = None) -> None:
    try:
        sys.exit(run(argv))
    except Exception as err:  # noqa: BLE001 - every error ends in one line and its exit code
        debug = "--debug" in (sys.argv[1:] if argv is None else argv)
        sys.exit(exits.report(err, debug, getattr(err, "merv_store", "")))


_root_cause = exits.root_cause  # the one-line form of a (Ray-wrapped) error
