"""`merv ablate --config grid.yaml [--address RAY]`: every variant of a grid trained on one
store, as Ray tasks (a local Ray by default), then the results table, plots and report.

Resumable: a variant whose ``results.json`` exists is done; a rerun after a kill trains only
the others. A variant trains in an attempt folder of its own, which the driver renames to the
variant's folder once the task has returned: a variant killed half-way, or finished by a worker
after its driver died, is trained again from scratch.
"""

from __future__ import annotations

import json
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.config import to_yaml
from pipeline.faults import fault_point


@dataclass
class AblationOutcome:
    runs: int
    trained: int  # by this call (the rest were done before)
    failed: dict[str, str] = field(default_factory=dict)  # variant id -> error line
    report: Path | None = None


def train_variants(configs: list[dict], outs: list[str], threads: int = 1) -> list[dict]:
    """Variants that read alike (a Ray task): `mixer.train` for one, side by side over one read
    of the store for several (`mixer.side_by_side`), each into its clean attempt folder;
    ``threads``: the task's CPU slots, torch's intra-op threads."""
    import torch

    from mixer import TrainConfig, train
    from mixer.side_by_side import train_side_by_side

    torch.set_num_threads(max(1, threads))
    for out in outs:
        shutil.rmtree(out, ignore_errors=True)
    cfgs = [
        TrainConfig.from_dict({**c, "out": o, "progress": False})
        for c, o in zip(configs, outs, strict=True)
    ]
    if len(cfgs) == 1:
        return [train(cfgs[0], log=lambda *_: None).to_dict()]
    return [r.to_dict() for r in train_side_by_side(cfgs)]


def run_ablation(grid, address: str | None = None, echo=print) -> AblationOutcome:
    from mixer.ablation.grid import expand
    from mixer.ablation.results import names, read_result
    from pipeline.store import FeatureStore

    store_encoders = list(FeatureStore.open(grid.store).encoders)
    variants = expand(grid, store_encoders)
    out = Path(grid.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "grid.yaml").write_text(to_yaml(grid, "ablate"))
    titles = names(variants, store_encoders)
    todo = [v for v in variants if read_result(out, v) is None]
    echo(f"ablate: {len({v.key for v in variants})} variants x {len(grid.seeds)} seed(s) = "
         f"{len(variants)} runs; {len(variants) - len(todo)} done before, {len(todo)} to train")  # fmt: skip
    outcome = AblationOutcome(runs=len(variants), trained=0)
    if todo:
        _train_on_ray(grid, todo, titles, out, address, outcome, echo)
    outcome.report = write_results(grid, variants, store_encoders, echo)
    return outcome


def _train_on_ray(grid, todo, titles, out, address, outcome, echo) -> None:
    from jobs.job_ray import JobRay
    from mixer.ablation.results import attempt_dir, commit_attempt, remove_attempts, variant_dir

    run_token = uuid.uuid4().hex[:12]
    remove_attempts(out)
    with JobRay(address, grid.store, echo) as job:
        job.start()
        import ray

        if address is not None:  # a cluster: every node must read the store and see `out`
            from jobs.grid_nodes import check_nodes_can_train

            check_nodes_can_train(grid.store, out)

        task = ray.remote(num_cpus=grid.cpus_per_variant, num_gpus=grid.gpus_per_variant)(
            train_variants
        )
        attempts = {v.id: attempt_dir(out, v, run_token) for v in todo}
        pending = {}
        node_cpus = max(n["Resources"].get("CPU", 1) for n in ray.nodes() if n["Alive"])
        cpus = ray.cluster_resources().get("CPU", 1)
        for group, slots in task_groups(grid, todo, cpus, node_cpus):
            sized = task.options(num_cpus=grid.cpus_per_variant * slots)  # one device still
            threads = max(1, int(grid.cpus_per_variant * slots))
            ref = sized.remote([v.config.to_dict() for v in group],
                               [str(attempts[v.id]) for v in group], threads)  # fmt: skip
            pending[ref] = group
        while pending:
            (ready,), _ = ray.wait(list(pending), num_returns=1)
            group = pending.pop(ready)
            try:
                results = ray.get(ready)
            except Exception as err:  # noqa: BLE001 - one task's error must not stop the grid
                line = str(getattr(err, "cause", err) or err).strip().splitlines()[-1]
                for v in group:
                    outcome.failed[v.id] = line
                    echo(f"ablate: {titles[v.key]} seed {v.seed} failed: {line}")
                continue
            for v, res in zip(group, results, strict=True):
                commit_attempt(attempts[v.id], variant_dir(out, v))
                outcome.trained += 1
                val = res["val_acc"][-1] if res["val_acc"] else None
                echo(f"ablate: {outcome.trained + len(outcome.failed)}/{len(todo)} "
                     f"{titles[v.key]} seed {v.seed}: val_acc "
                     f"{val if val is None else round(val, 4)}, {res['seconds']:.1f}s"
                     + (f" (read shared by {len(group)})" if len(group) > 1 else ""))  # fmt: skip
                fault_point("after_variant")  # the kill-and-rerun test stops the driver here
    remove_attempts(out)  # the failed variants' folders


def task_groups(grid, todo: list, cpus: float, node_cpus: float) -> list[tuple[list, int]]:
    """The Ray tasks of ``todo`` and the CPU slots of each: one variant and one slot each, or
    with ``shared_read`` one task per group of variants that read alike, given the slots the
    other groups leave free, at most a node's (its steps use them as threads: one read, every
    core busy)."""
    if not grid.shared_read:
        return [([v], 1) for v in todo]
    from mixer.side_by_side import shared_read_groups

    groups = [[todo[i] for i in g] for g in shared_read_groups([v.config for v in todo])]
    per_slot = max(grid.cpus_per_variant, 1e-9)
    slots = max(1, int(cpus // per_slot))
    share = max(1, min(slots // len(groups), int(node_cpus // per_slot)))
    return [(group, min(share, len(group))) for group in groups]


def write_results(grid, variants, store_encoders, echo=print) -> Path:
    """results.parquet, summary.md, plots/*.png and report.html from the finished variants."""
    from mixer.ablation import plots
    from mixer.ablation.report import write_report
    from mixer.ablation.results import (
        markdown_table,
        names,
        result_rows,
        summarise,
        variant_dir,
        write_parquet,
    )
    from mixer.ablation.weights import video_weights

    out = Path(grid.out)
    rows = result_rows(out, variants, store_encoders)
    if not rows:
        raise ValueError(f"no variant of {grid.out} has finished: nothing to report")
    write_parquet(rows, out / "results.parquet")
    summary = summarise(rows)
    table = markdown_table(summary)
    (out / "summary.md").write_text(table)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    pics = out / "plots"
    pics.mkdir(exist_ok=True)
    titles = names(variants, store_encoders)
    metric = grid.metric if any(s.get(grid.metric) is not None for s in summary) else "train_acc"
    images = [plots.metric_bars(summary, metric, pics / f"{metric}_per_variant.png")]
    first = {}
    for v in variants:
        if (variant_dir(out, v) / "metrics.jsonl").exists():
            first.setdefault(titles[v.key], variant_dir(out, v))
    images.append(plots.loss_curves(first, pics / "loss_curves.png"))
    mixed = next((v for v in variants if len(v.config.encoders or []) > 1
                  and v.config.fusion in ("cross_attention", "static_weights")
                  and (variant_dir(out, v) / "results.json").exists()), None)  # fmt: skip
    notes = [f"store {grid.store}; {len(rows)} runs; mean ± sample standard deviation over "
             "seeds; the best value of each column in bold."]  # fmt: skip
    if mixed is not None:
        w = video_weights(variant_dir(out, mixed))
        title = f"{titles[mixed.key]}, seed {mixed.seed}: {len(w.video_ids)} held-out videos"
        images.append(plots.weight_distribution(w, pics / "mixer_weights.png", title))
        if any(w.labels):
            images.append(plots.weights_by_class(w, pics / "mixer_weights_by_class.png", title))
    report = write_report(out, f"Ablations over {grid.store}", table, images, notes)
    echo(table.rstrip())
    echo(f"ablate: results.parquet, summary.md, plots/ and {report} written")
    return report


def add_parser(sub) -> None:
    p = sub.add_parser(
        "ablate",
        help="train every variant of an ablation grid on one store; table, plots, report",
        description="Expand the grid file's `ablate:` section (encoder subsets, fusions, "
        "projectors, objectives, token budgets, learning rates, seeds), train each variant on "
        "the same rows as a Ray task, and write results.parquet, summary.md, plots/ and "
        "report.html. A rerun trains only the variants without results.",
    )
    p.add_argument("--config", required=True, help="YAML grid file (an `ablate:` section)")
    p.add_argument("--address", help="Ray cluster (default: a local Ray)")
    p.add_argument("--out", help="output folder (overrides the file's `out`)")
    p.set_defaults(handler=_run)


def _run(args) -> int:
    from mixer.ablation.grid import AblationConfig

    grid = AblationConfig.load(args.config, out=args.out)
    outcome = run_ablation(grid, args.address)
    return 1 if outcome.failed else 0
