"""`merv train`: fit projectors + mixer + head on a store's cached features."""

from __future__ import annotations

from jobs.config import EPILOG
from pipeline.config import ConfigError, build_config, to_yaml


def run_train(config, echo=print):
    from mixer import train

    config = config.with_recipe()  # the objective's epochs and batch sizes, shown
    echo("effective config:\n" + to_yaml(config, "train").rstrip())
    if config.workers:
        from jobs.train_on_ray import train_on_ray

        result = train_on_ray(config)
    else:
        result = train(config, log=echo)
    best = max((a for a in result.val_acc if a is not None), default=None)
    echo(
        f"trained on {result.n_train} videos, validated on {result.n_val}; "
        f"final val acc {_pct(result.val_acc[-1])}, best {_pct(best)}; {result.seconds:.1f}s"
    )
    if result.mixer_weights:
        echo(
            "mean mixer weight per encoder: "
            + ", ".join(f"{k} {v:.3f}" for k, v in result.mixer_weights.items())
        )
    if result.out:
        echo(f"checkpoint, config and results in {result.out}")
    return result


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train projectors + mixer + head on cached features",
        description="Fit only the projectors, the fusion (MERV cross-attention by default) and "
        "the objective head on the features of a store; never touches a video.",
        epilog=EPILOG,
    )
    p.add_argument("store", nargs="?", help="feature store made by `merv extract`")
    p.add_argument("--config", help="YAML job config")
    p.add_argument("--labels", help="CSV/Parquet/JSONL with video_id,label columns")
    p.add_argument("--encoders", help="comma list of the store's encoders (default: all)")
    p.add_argument(
        "--split-file",
        dest="split_file",
        help="CSV/Parquet/JSONL of video_id,split (train/val/test; test rows are left out)",
    )
    p.add_argument(
        "--split-column",
        dest="split_column",
        help="the split's column: in --split-file (default: split), else in the manifest",
    )
    p.add_argument(
        "--val-fraction", type=float, dest="val_fraction", help="seeded val share (no split)"
    )
    p.add_argument("--lm", help="objective lm: the frozen language model (folder or hub id)")
    p.add_argument("--text", help="objective lm: LLaVA JSON or CSV/JSONL/Parquet of captions/QA")
    p.add_argument("--prompt", help="objective lm: prompt builder, pure (default) or vicuna")
    p.add_argument("--text-format", dest="text_format", help="objective lm: align or finetune")
    p.add_argument("--fusion", help="fusion module (cross_attention)")
    p.add_argument("--projector", help="projector (linear)")
    p.add_argument("--objective", help="objective (probe)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size", help="rows per optimizer step")
    p.add_argument(
        "--micro-batch-size", type=int, dest="micro_batch_size", help="rows per forward/backward"
    )
    p.add_argument("--lr", type=float)
    p.add_argument("--d-model", type=int, dest="d_model")
    p.add_argument("--pool-grid", type=int, dest="pool_grid", help="pool the 8x8 grid at read time")
    p.add_argument("--pool-time", type=int, dest="pool_time", help="pool the 16 steps at read time")
    p.add_argument("--seed", type=int)
    p.add_argument("--precision", choices=["fp32", "bf16"], help="bf16: autocast (on a GPU)")
    p.add_argument("--out", help="directory for the checkpoint, config and results")
    p.add_argument("--loader-workers", type=int, dest="loader_workers", help="reader processes (2)")
    p.add_argument("--checkpoint-every", type=int, dest="checkpoint_every", help="steps (0: end)")
    p.add_argument("--no-progress", action="store_const", const=False, dest="progress")
    p.add_argument("--workers", type=int, help="Ray Train workers (0: train in this process)")
    p.add_argument("--address", help="Ray cluster for --workers (default: a local Ray)")
    p.add_argument(
        "--resume",
        action="store_const",
        const=True,
        help="continue from the latest checkpoint in --out (to the same losses and weights)",
    )


def train_config(args):
    """File values, then the flags given (`--encoders a,b` is coerced to a list by the loader)."""
    from mixer import TrainConfig

    flags = {
        k: getattr(args, k)
        for k in (
            "store",
            "labels",
            "split_file",
            "split_column",
            "val_fraction",
            "fusion",
            "projector",
            "objective",
            "epochs",
            "batch_size",
            "micro_batch_size",
            "lr",
            "d_model",
            "pool_grid",
            "pool_time",
            "seed",
            "precision",
            "out",
            "loader_workers",
            "checkpoint_every",
            "resume",
            "progress",
            "workers",
            "address",
        )
    }
    flags["encoders"] = args.encoders or None  # an empty --encoders means not given
    try:
        return _with_lm_flags(build_config(TrainConfig, args.config, "train", flags), args)
    except ConfigError:
        raise
    except (TypeError, ValueError) as err:  # no store given, or TrainConfig.validate refuses
        raise ConfigError(f"{args.config or 'flags'} [train]: {err}") from err


def _with_lm_flags(config, args):
    """--lm / --text / --prompt / --text-format: the lm objective's options (--lm selects it)."""
    given = {"model": args.lm, "text": args.text, "prompt": args.prompt, "format": args.text_format}
    given = {k: v for k, v in given.items() if v is not None}
    if not given:
        return config
    objective = "lm" if args.lm else config.objective
    return config.replace(
        objective=objective, objective_options={**config.objective_options, **given}
    )
