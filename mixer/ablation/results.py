"""An ablation's results: one row per variant and seed, then the mean and standard deviation
over seeds per variant, as Parquet and as a Markdown table with the best of each column marked.

The standard deviation is the sample one (ddof=1) over a variant's seeds; with a single seed it
is 0.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import yaml

from .grid import Variant

AXES = ("fusion", "projector", "objective", "pool_grid", "pool_time", "lr")
# summary columns: (title, row key, better is higher)
METRICS = (("val_acc", True), ("train_acc", True), ("train_loss", False))
COSTS = (("params", False), ("train_s", False))


def variant_dir(out: str | Path, variant: Variant) -> Path:
    return Path(out) / "variants" / variant.id


def attempt_dir(out: str | Path, variant: Variant, run_token: str) -> Path:
    """Where one run of the grid trains a variant before it counts as finished.

    Only the driver that asked for the variant moves it to `variant_dir` (`commit_attempt`), so
    a worker that outlives a killed driver for a moment never adds a variant the rerun would
    count as done, nor writes into the folder the rerun trains."""
    return Path(out) / "variants" / f".{variant.id}.attempt-{run_token}"


def commit_attempt(attempt: Path, final: Path) -> None:
    """Name the finished attempt's folder as the variant's, its saved `out` fields included."""
    config_file, results_file = attempt / "train_config.yaml", attempt / "results.json"
    config = yaml.safe_load(config_file.read_text())
    config_file.write_text(yaml.safe_dump({**config, "out": str(final)}, sort_keys=False))
    results = json.loads(results_file.read_text())
    results_file.write_text(json.dumps({**results, "out": str(final)}, indent=2) + "\n")
    shutil.rmtree(final, ignore_errors=True)  # what an earlier layout or a crash left
    os.replace(attempt, final)


def remove_attempts(out: str | Path) -> None:
    """Folders of attempts that never finished (killed runs, failed variants)."""
    for folder in (Path(out) / "variants").glob(".*.attempt-*"):
        shutil.rmtree(folder, ignore_errors=True)


def read_result(out: str | Path, variant: Variant) -> dict | None:
    """A finished variant's results.json (None: not run, or killed before it finished)."""
    path = variant_dir(out, variant) / "results.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def names(variants: list[Variant], store_encoders: list[str]) -> dict[str, str]:
    """Variant key -> a readable name: its encoders (`all` for every one), then each axis that
    takes more than one value in the grid."""
    axes = [json.loads(v.key) for v in variants]
    varying = [a for a in AXES if len({json.dumps(x[a]) for x in axes}) > 1]
    out = {}
    for v, axis in zip(variants, axes, strict=True):
        enc = "all" if axis["encoders"] == store_encoders else "+".join(axis["encoders"])
        parts = [enc] + [
            f"{a}={axis[a]}" for a in varying if not (a == "fusion" and len(axis["encoders"]) == 1)
        ]
        out[v.key] = " ".join(parts)
    return out


def result_rows(out: str | Path, variants: list[Variant], store_encoders: list[str]) -> list[dict]:
    """One row per finished variant and seed: its config axes, metrics, cost, mixer weights."""
    titles = names(variants, store_encoders)
    rows = []
    for v in variants:
        res = read_result(out, v)
        if res is None:
            continue
        axis = json.loads(v.key)
        row = {"variant": titles[v.key], "variant_id": v.id, "seed": v.seed,
               "encoders": "+".join(axis["encoders"]),
               **{a: axis[a] for a in AXES},
               "val_acc": res["val_acc"][-1] if res["val_acc"] else None,
               "train_acc": res["train_acc"][-1], "train_loss": res["train_loss"][-1],
               "params": res["param_counts"]["total"], "train_s": res["seconds"],
               "shared_read": res.get("shared_read", 1)}  # fmt: skip
        for e in store_encoders:
            row[f"w_{e}"] = res["mixer_weights"].get(e)
        rows.append(row)
    return rows


def write_parquet(rows: list[dict], path: str | Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(rows), str(path))


def summarise(rows: list[dict]) -> list[dict]:
    """Per variant (in first-seen order): seeds, and mean / std of every metric and cost."""
    by: dict[str, list[dict]] = {}
    for r in rows:
        by.setdefault(r["variant"], []).append(r)
    out = []
    for name, group in by.items():
        s = {"variant": name, "seeds": len(group)}
        for key, _ in METRICS + COSTS:
            values = np.array([g[key] for g in group if g[key] is not None], dtype=float)
            s[key] = float(values.mean()) if values.size else None
            s[f"{key}_std"] = float(values.std(ddof=1)) if values.size > 1 else 0.0
        out.append(s)
    return out


def markdown_table(summary: list[dict]) -> str:
    """mean ± std per metric column; the best value of each column in bold."""
    cols = METRICS + COSTS
    best = {}
    for key, higher in cols:
        values = [s[key] for s in summary if s[key] is not None]
        if values:
            best[key] = max(values) if higher else min(values)
    head = "| variant | seeds | " + " | ".join(k for k, _ in cols) + " |"
    lines = [head, "|" + "---|" * (len(cols) + 2)]
    for s in summary:
        cells = []
        for key, _ in cols:
            if s[key] is None:
                cells.append("n/a")
                continue
            text = _fmt(key, s[key], s[f"{key}_std"])
            cells.append(f"**{text}**" if s[key] == best.get(key) else text)
        lines.append(f"| {s['variant']} | {s['seeds']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _fmt(key: str, mean: float, std: float) -> str:
    if key == "params":
        return f"{mean:,.0f}"
    if key == "train_s":
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.4f} ± {std:.4f}"
