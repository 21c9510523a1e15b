"""`merv ablate`: a grid of 10 variants x 2 seeds over a synthetic store through local Ray,
its table, statistics, pictures and report; a rerun after SIGKILL trains only what is missing."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

from jobs.ablate import run_ablation, task_groups
from mixer.ablation.grid import AblationConfig, encoder_subsets, expand
from tests.helpers import cli_env, quiet
from tests.mixer.conftest import separable, write_store

ENCODERS = ["a", "b", "c"]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    feats, y = separable(48, {"a": 6, "b": 4, "c": 4}, informative="a", margin=2.0)
    url = str(tmp_path_factory.mktemp("ablate") / "store.zarr")
    write_store(url, feats, [f"c{v}" for v in y], failed=[5], shard_size=16)
    return url


def grid_file(path, store, out) -> str:
    grid = {"ablate": {
        "store": store, "out": str(out), "seeds": [0, 1],
        "encoders": ["all", "singles"], "fusions": ["cross_attention", "channel_concat"],
        "lr": [0.003, 0.01], "pool_grid": [1],
        "train": {"d_model": 8, "epochs": 3, "batch_size": 8,
                  "loader_workers": 0, "fusion_options": {}, "val_fraction": 0.25},
    }}  # fmt: skip
    path.write_text(yaml.safe_dump(grid))
    return str(path)


def test_encoder_subset_keywords():
    assert encoder_subsets("singles", ENCODERS) == [["a"], ["b"], ["c"]]
    assert encoder_subsets("leave-one-out", ENCODERS) == [["b", "c"], ["a", "c"], ["a", "b"]]
    assert len(encoder_subsets("all-subsets", ENCODERS)) == 7
    assert encoder_subsets(["c", "a"], ENCODERS) == [["c", "a"]]
    with pytest.raises(ValueError, match="neither a list of encoders nor one of"):
        encoder_subsets("pairs", ENCODERS)


@pytest.mark.parametrize(("key", "value", "fix"), [
    ("pool_grid", 2, "`pool_grid: [2]` under ablate"), ("lr", 0.003, "`lr: [0.003]`"),
    ("seed", 3, "`seeds: [3]`"), ("fusion", "channel_concat", '`fusions: ["channel_concat"]`'),
])  # fmt: skip
def test_a_grid_axis_under_train_is_refused_not_overridden(key, value, fix):
    # The grid sets these for every variant: a value under train would be dropped without a word.
    with pytest.raises(ValueError, match=f"ablate.train.{key}: set by the grid.*{re.escape(fix)}"):
        AblationConfig(store="s", out="o", train={"epochs": 2, key: value})
    with pytest.raises(ValueError, match="ablate.train.row_encoders: set by the grid"):
        AblationConfig(store="s", out="o", train={"row_encoders": ENCODERS})
    grid = AblationConfig(store="s", out="o", pool_grid=[value] if key == "pool_grid" else [None])
    assert {v.config.pool_grid for v in expand(grid, ENCODERS)} == {grid.pool_grid[0]}


def test_tasks_share_reads_and_fill_the_cores_a_node_has():
    grid = AblationConfig(store="s", out="o", seeds=[0, 1], encoders=["singles", "all"])
    todo = expand(grid, ENCODERS)  # 4 variants x 2 seeds: two groups that read alike (a seed each)
    shapes = lambda tasks: [(len(g), slots) for g, slots in tasks]  # noqa: E731
    assert shapes(task_groups(grid, todo, cpus=2, node_cpus=2)) == [(4, 1), (4, 1)]
    assert shapes(task_groups(grid, todo, cpus=16, node_cpus=16)) == [(4, 4), (4, 4)]
    assert shapes(task_groups(grid, todo, cpus=16, node_cpus=3)) == [(4, 3), (4, 3)]
    assert {v.seed for v in task_groups(grid, todo, 2, 2)[1][0]} == {1}
    alone = AblationConfig(store="s", out="o", seeds=[0, 1], encoders=["singles", "all"],
                           shared_read=False)  # fmt: skip
    assert shapes(task_groups(alone, todo, cpus=16, node_cpus=16)) == [(1, 1)] * 8


def test_grid_trains_every_variant_and_reports(store, tmp_path, ray_session):
    grid = AblationConfig.load(grid_file(tmp_path / "grid.yaml", store, tmp_path / "out"))
    variants = expand(grid, ENCODERS)
    # all x 2 fusions x 2 lr + 3 singles x 2 lr (a single encoder has nothing to fuse) = 10
    assert len({v.key for v in variants}) == 10 and len(variants) == 20
    assert all(v.config.row_encoders == ENCODERS for v in variants)  # the same rows for all
    outcome = run_ablation(grid, echo=quiet)
    assert outcome.trained == 20 and not outcome.failed

    rows = pq.read_table(tmp_path / "out" / "results.parquet").to_pylist()
    assert len(rows) == 20 and len({(r["variant_id"]) for r in rows}) == 20
    assert {r["shared_read"] for r in rows} == {10}  # one read per seed: 10 variants side by side
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert len(summary) == 10 and all(s["seeds"] == 2 for s in summary)
    for s in summary:  # mean and sample standard deviation over the two seeds
        vals = [r["val_acc"] for r in rows if r["variant"] == s["variant"]]
        assert s["val_acc"] == pytest.approx(np.mean(vals))
        assert s["val_acc_std"] == pytest.approx(np.std(vals, ddof=1))
    results = [json.loads((tmp_path / "out" / "variants" / r["variant_id"] / "results.json")
                          .read_text()) for r in rows]  # fmt: skip
    assert {res["n_train"] + res["n_val"] for res in results} == {47}  # row 5 failed for all
    table = (tmp_path / "out" / "summary.md").read_text()
    best = max(s["val_acc"] for s in summary)
    assert table.count(f"**{best:.4f} ±") >= 1 and len(table.strip().splitlines()) == 12

    report = (tmp_path / "out" / "report.html").read_text()
    pngs = sorted((tmp_path / "out" / "plots").glob("*.png"))
    assert {p.name for p in pngs} == {"val_acc_per_variant.png", "loss_curves.png",
                                      "mixer_weights.png", "mixer_weights_by_class.png"}  # fmt: skip
    for png in pngs:
        with Image.open(png) as im:
            im.verify()  # a real PNG
        assert f'src="plots/{png.name}"' in report


def finished(out) -> dict[str, int]:
    """Variant folder -> mtime of its results.json (attempt folders, dot-named, left out)."""
    return {
        p.parent.name: p.stat().st_mtime_ns
        for p in out.glob("variants/*/results.json")
        if not p.parent.name.startswith(".")
    }


def test_a_killed_grid_reruns_only_the_missing_variants(store, tmp_path):
    path = grid_file(tmp_path / "grid.yaml", store, tmp_path / "out")
    cmd = [sys.executable, "-c", "from jobs.cli import main; main()", "ablate", "--config", path]
    killed = subprocess.run(cmd, env=cli_env(MERV_FAULT="after_variant:3"), capture_output=True,
                            text=True, timeout=600)  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    done = finished(tmp_path / "out")
    # exactly the three the driver saw finish: a worker that outlives its killed driver for a
    # moment finishes into an attempt folder that no rerun counts
    assert len(done) == 3
    rerun = subprocess.run(cmd, env=cli_env(), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-2000:]
    assert f"{len(done)} done before, {20 - len(done)} to train" in rerun.stdout
    after = finished(tmp_path / "out")
    assert len(after) == 20 and not list((tmp_path / "out" / "variants").glob(".*"))
    assert all(after[k] == t for k, t in done.items())  # finished variants were not retrained
    assert pq.read_table(tmp_path / "out" / "results.parquet").num_rows == 20
