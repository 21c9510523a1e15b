"""`merv demo` end to end at a small size: synthetic clips, extraction with the four tiny encoders
through local Ray, the ablation (its variants side by side over one read), its report; then
`merv explain` on the demo's own store: weights that sum to 1 and equal a direct forward; and
the distillation sweep's table and picture."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from jobs.cli import main
from jobs.demo import run_demo
from mixer import load_model
from mixer.inmemory import load_features
from tests.helpers import quiet


def test_the_demo_store_explained(tmp_path, ray_session, capsys):
    out = tmp_path / "demo"
    summary = run_demo(str(out), per_class=3, epochs=2, lm_epochs=2, echo=quiet)
    assert len(summary) == 6 and all(s["seeds"] == 2 for s in summary)  # 4 singles + all x 2
    assert (out / "ablation" / "report.html").exists()
    rows = pq.read_table(out / "ablation" / "results.parquet").to_pylist()
    assert min(r["shared_read"] for r in rows) > 1  # the fast path was taken
    run = next(r for r in rows if r["variant"] == "all fusion=cross_attention" and r["seed"] == 0)
    checkpoint = out / "ablation" / "variants" / run["variant_id"]

    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["explain", str(out / "store.zarr"), "--checkpoint", str(checkpoint),
              "--out", str(tmp_path / "explain"), "--all"])  # fmt: skip
    assert stop.value.code == 0, capsys.readouterr().err
    table = pq.read_table(tmp_path / "explain" / "mixer_weights.parquet").to_pydict()
    encoders = [k[2:] for k in table if k.startswith("w_")]
    assert len(encoders) == 4
    w = np.stack([table[f"w_{e}"] for e in encoders], axis=1)
    np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-6)
    data = load_features(str(out / "store.zarr"), labels=str(out / "labels.csv"), log=quiet)
    assert len(table["video_id"]) == len(data.video_ids) == 12
    model = load_model(checkpoint).eval()
    with torch.no_grad():
        _, direct = model.fuse(data.features)
    order = [data.video_ids.index(v) for v in table["video_id"]]
    np.testing.assert_allclose(w, direct.numpy()[order], rtol=1e-5, atol=1e-6)
    assert set(table["label"]) == {r[1] for r in _labels(out / "labels.csv")}
    _the_sweep_is_charted(out / "students")


def _the_sweep_is_charted(students) -> None:
    """Step 4: one student per subset of the four encoders, each scored, a table and a PNG."""
    from PIL import Image

    rows = pq.read_table(students / "sweep.parquet").to_pylist()
    assert len(rows) == 15 and len({r["encoders"] for r in rows}) == 15
    assert all(r["rows"] > 0 and -1 <= r["cosine"] <= 1 and r["cost_s"] > 0 for r in rows)
    full = next(r for r in rows if r["encoders"].count(",") == 3)
    assert full["cost_ratio"] == 1.0 and all(r["cost_ratio"] < 1.0 for r in rows if r is not full)
    cheapest = min(rows, key=lambda r: (r["cost_s"], -r["kept"]))
    assert cheapest["pareto"]  # nothing costs less and keeps more
    table = (students / "sweep.md").read_text()
    lines = [line for line in table.splitlines() if line.startswith("|") and "-mlp" in line]
    assert len(lines) == 15 and "teacher accuracy" in table
    with Image.open(students / "sweep.png") as png:
        assert png.format == "PNG" and png.size[0] > 300


def _labels(path) -> list[tuple[str, str]]:
    lines = path.read_text().splitlines()[1:]
    return [tuple(line.split(",")) for line in lines]
