"""`merv distill --sweep`: one student per subset of the teacher's encoders, trained side by side
over one read of the store, each scored against the teacher; a table and a picture of quality
kept against inference cost, the Pareto front marked, and the cheapest student that keeps a
chosen share of the teacher's metric."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..ablation.plots import _plt, _save
from ..checkpoint import read_spec
from ..side_by_side import shared_read_groups, train_side_by_side
from .compare import compare_to_teacher
from .objective import teacher_file
from .student import encoder_subsets, student_config, student_name


def run_sweep(
    teacher: str,
    out: str | Path,
    costs: dict[str, float],
    store: str | None = None,
    adapter: str = "mlp",
    keep: float = 0.9,
    log: Callable[[str], None] = print,
    loss: dict[str, float] | None = None,
    **train,
) -> dict:
    """Train, score and chart every student; ``costs``: inference seconds per video of each
    encoder (the store's telemetry). Returns {"rows": table rows, "chosen": a row or None,
    "table", "png"} and writes sweep.parquet, sweep.md and sweep.png in ``out``."""
    out = Path(out)
    encoders = read_spec(teacher_file(teacher)).encoders
    configs = [
        student_config(
            teacher,
            subset,
            store,
            adapter,
            loss=loss,
            out=str(out / student_name(subset, adapter)),
            **train,
        )  # fmt: skip
        for subset in encoder_subsets(encoders)
    ]
    for group in shared_read_groups(configs):
        log(f"training {len(group)} student(s) side by side over one read of the store")
        train_side_by_side([configs[i] for i in group])
    full = sum(costs[e] for e in encoders)
    rows = []
    for config in configs:
        scores = compare_to_teacher(config.out, store)
        cost = sum(costs[e] for e in config.encoders)
        rows.append({"student": Path(config.out).name, **scores, "cost_s": cost,
                     "cost_ratio": cost / full if full else 0.0})  # fmt: skip
    mark_pareto(rows)
    chosen = cheapest_keeping(rows, keep)
    table = markdown(rows, keep, chosen)
    out.mkdir(parents=True, exist_ok=True)
    (out / "sweep.md").write_text(table + "\n")
    _parquet(rows, out / "sweep.parquet")
    png = pareto_plot(rows, out / "sweep.png", keep, chosen)
    return {"rows": rows, "chosen": chosen, "table": table, "png": png}


def mark_pareto(rows: list[dict]) -> None:
    """``pareto``: no other student is at most as costly and keeps at least as much, one of
    the two strictly."""
    for r in rows:
        r["pareto"] = not any(
            o["cost_s"] <= r["cost_s"] and o["kept"] >= r["kept"]
            and (o["cost_s"] < r["cost_s"] or o["kept"] > r["kept"])
            for o in rows
        )  # fmt: skip


def cheapest_keeping(rows: list[dict], keep: float) -> dict | None:
    good = [r for r in rows if r["kept"] >= keep]
    return min(good, key=lambda r: (r["cost_s"], -r["kept"])) if good else None


def markdown(rows: list[dict], keep: float, chosen: dict | None) -> str:
    metric = rows[0]["metric_name"] if rows else "metric"
    lines = [
        f"| student | encoder s/video | cost vs teacher | cosine | rel. L2 | {metric} | kept |"
        " Pareto |",
        "|---|---:|---:|---:|---:|---:|---:|:---:|",
    ]
    for r in sorted(rows, key=lambda r: r["cost_s"]):
        name = f"**{r['student']}**" if chosen is r else r["student"]
        lines.append(
            f"| {name} | {r['cost_s']:.4g} | {r['cost_ratio']:.2f}x | {r['cosine']:.3f} | "
            f"{r['rel_l2']:.3f} | {r['metric']:.3f} | {r['kept']:.1%} | "
            f"{'yes' if r['pareto'] else ''} |"
        )
    teacher = f"teacher {metric}: {rows[0]['teacher_metric']:.3f}" if rows else ""
    pick = (f"cheapest student keeping >= {keep:.0%}: {chosen['student']} "
            f"({chosen['cost_ratio']:.2f}x the cost, {chosen['kept']:.1%} kept)"
            if chosen else f"no student keeps >= {keep:.0%} of the teacher's {metric}")  # fmt: skip
    return "\n".join(lines) + f"\n\n{teacher}; {pick}"


def pareto_plot(rows: list[dict], path: Path, keep: float, chosen: dict | None) -> Path:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(9, 5))
    ax.scatter([r["cost_ratio"] for r in rows], [r["kept"] for r in rows], color="#9ab",
               zorder=2, label="students")  # fmt: skip
    front = sorted((r for r in rows if r["pareto"]), key=lambda r: r["cost_ratio"])
    ax.step([r["cost_ratio"] for r in front], [r["kept"] for r in front], where="post",
            color="#e45756", lw=1.5, zorder=3, marker="o", label="Pareto front")  # fmt: skip
    for k, r in enumerate(sorted(rows, key=lambda r: (r["kept"], r["cost_ratio"]))):
        ax.annotate(_short(r["student"]), (r["cost_ratio"], r["kept"]), fontsize=6,
                    xytext=(4, 3 if k % 2 else -8), textcoords="offset points")  # fmt: skip
    if chosen is not None:
        ax.scatter([chosen["cost_ratio"]], [chosen["kept"]], s=120, facecolors="none",
                   edgecolors="black", zorder=4, label=f"cheapest keeping >= {keep:.0%}")  # fmt: skip
    ax.axhline(keep, color="grey", ls=":", lw=1)
    ax.set_xlabel("inference cost: student encoders / teacher encoders (s per video)")
    ax.set_ylabel(f"teacher's {rows[0]['metric_name'] if rows else 'metric'} kept")
    ax.set_title("distilled students: quality kept against cost")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return _save(plt, fig, path)


def _short(student: str) -> str:
    """ "languagebind-tiny+dinov2-tiny-mlp" -> "lang+dino": a label that fits the chart."""
    return "+".join(e.split("-")[0][:4] for e in student.rsplit("-", 1)[0].split("+"))


def _parquet(rows: list[dict], path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    plain = [{k: v for k, v in r.items() if k not in ("encoders", "teacher_encoders")}
             | {"encoders": ",".join(r["encoders"])} for r in rows]  # fmt: skip
    pq.write_table(pa.Table.from_pylist(plain), path)
