"""`merv train`: fit projectors + mixer + head on a store's cached features."""

from __future__ import annotations

from pipeline.config import to_yaml


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
