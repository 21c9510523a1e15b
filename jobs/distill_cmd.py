"""`merv distill STORE --teacher C --student-encoders siglip[,..]` (or `--sweep`): distil a
trained mixture into fewer encoders on the cache, and score the student against its teacher
(token agreement, the teacher's metric kept, inference cost from the store's telemetry)."""

from __future__ import annotations

import json
from pathlib import Path

from pipeline.config import ConfigError

TRAIN_FLAGS = ("epochs", "batch_size", "lr", "seed", "device", "loader_workers", "resume",
               "checkpoint_every", "progress")  # fmt: skip


def add_parser(sub) -> None:
    p = sub.add_parser(
        "distill",
        help="distil a trained mixture into fewer encoders (a cheap student), on the cache",
        description="Train a student (some of the store's encoders + an adapter) to produce the "
        "teacher's fused tokens, then score it on the held-out rows against the teacher. "
        "--sweep trains one student per subset of the teacher's encoders.",
    )
    p.add_argument("store", help="feature store with the teacher's and the student's encoders")
    p.add_argument("--teacher", required=True, help="a merv train output folder (or its weights)")
    p.add_argument("--student-encoders", dest="students", help="comma list, e.g. siglip")
    p.add_argument("--adapter", choices=["mlp", "temporal"], default="mlp",
                   help="per-token MLP (default) or a small transformer over the time steps")  # fmt: skip
    p.add_argument("--cosine-weight", type=float, dest="cosine_weight", help="loss weight (1.0)")
    p.add_argument("--smooth-l1-weight", type=float, dest="smooth_l1_weight", help="(1.0)")
    p.add_argument("--sweep", action="store_true", help="one student per encoder subset")
    p.add_argument("--keep", type=float, default=0.9,
                   help="--sweep: name the cheapest student keeping this share (0.9)")  # fmt: skip
    p.add_argument("--out", help="output folder (default: students/ beside the teacher's run)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, dest="batch_size")
    p.add_argument("--lr", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu, cuda")
    p.add_argument("--loader-workers", type=int, dest="loader_workers", help="reader processes")
    p.add_argument("--checkpoint-every", type=int, dest="checkpoint_every", help="steps (0: end)")
    p.add_argument("--resume", action="store_const", const=True, help="continue --out's run")
    p.add_argument("--no-progress", action="store_const", const=False, dest="progress")
    p.set_defaults(handler=run_distill)


def run_distill(args, echo=print) -> int:
    from mixer.distill.student import default_out, student_name

    train = {k: getattr(args, k) for k in TRAIN_FLAGS if getattr(args, k) is not None}
    loss = {k: getattr(args, k) for k in ("cosine_weight", "smooth_l1_weight")
            if getattr(args, k) is not None}  # fmt: skip
    costs = encoder_costs(args.store, echo)
    base = Path(args.out) if args.out else default_out(args.teacher)
    if args.sweep:
        from mixer.distill.sweep import run_sweep

        result = run_sweep(args.teacher, base, costs, args.store, args.adapter, args.keep,
                           echo, loss, **train)  # fmt: skip
        echo(result["table"])
        echo(f"table {base / 'sweep.md'}, picture {result['png']}")
        return 0
    if not args.students:
        raise ConfigError("distill needs --student-encoders (a comma list) or --sweep")
    encoders = [e.strip() for e in args.students.split(",") if e.strip()]
    out = Path(args.out) if args.out else base / student_name(encoders, args.adapter)
    scores = distill_one(args.teacher, encoders, args.store, args.adapter, loss, out, costs, echo,
                         **train)  # fmt: skip
    (out / "distill_eval.json").write_text(json.dumps(scores, indent=2) + "\n")
    echo(f"student in {out} (distill_eval.json); serve it with merv embed INPUT --model {out}")
    return 0


def distill_one(teacher, encoders, store, adapter, loss, out, costs, echo, **train) -> dict:
    from jobs.train_cmd import run_train
    from mixer.distill.compare import compare_to_teacher
    from mixer.distill.student import student_config

    config = student_config(teacher, encoders, store, adapter, loss=loss, out=str(out), **train)
    run_train(config, echo)
    scores = compare_to_teacher(out, store)
    student_s = sum(costs[e] for e in encoders)
    teacher_s = sum(costs[e] for e in scores["teacher_encoders"])
    scores.update(cost_s=student_s, teacher_cost_s=teacher_s,
                  cost_ratio=student_s / teacher_s if teacher_s else 0.0)  # fmt: skip
    which = "held-out" if scores["held_out"] else "all (the run had no val split)"
    echo(
        f"student {'+'.join(encoders)} vs teacher {'+'.join(scores['teacher_encoders'])} on "
        f"{scores['rows']} {which} videos: token cosine {scores['cosine']:.3f}, relative L2 "
        f"{scores['rel_l2']:.3f}; {scores['metric_name']} {scores['metric']:.3f} vs "
        f"{scores['teacher_metric']:.3f} ({scores['kept']:.1%} kept); encoder cost "
        f"{student_s:.4g} vs {teacher_s:.4g} s/video ({scores['cost_ratio']:.2f}x)"
    )
    return scores


def encoder_costs(store: str, echo=print) -> dict[str, float]:
    """Inference seconds per video of each encoder (preprocess + forward), from the store's
    extraction telemetry; a store without it counts each encoder as 1 (said so)."""
    from jobs.cost_cmd import extraction_cost
    from pipeline.store import FeatureStore

    try:
        cost = extraction_cost(store)
    except ValueError as err:
        echo(f"note: {err}; costs below count encoders (1 each), not seconds")
        return dict.fromkeys(FeatureStore.open(store).encoders, 1.0)
    n = max(1, cost["videos"])
    return {e: (c["preprocess_s"] + c["forward_s"]) / n for e, c in cost["encoders"].items()}
