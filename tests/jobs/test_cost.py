"""`merv cost`: per-encoder seconds and bytes from a real extraction's telemetry, per 1,000
videos, and the break-even point against running the encoders on the fly."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from jobs.cli import main
from jobs.cost_cmd import extraction_cost, print_cost
from mixer import TrainConfig, train
from tests.helpers import quiet


def test_cost_per_encoder_and_break_even(in_process_store, tmp_path, capsys):
    store = str(in_process_store)
    summary = json.loads((in_process_store / "_jobs" / "extract_summary.json").read_text())
    assert set(summary["encoders"]) == {
        "languagebind-tiny",
        "dinov2-tiny",
        "vivit-tiny",
        "siglip-tiny",
    }
    assert all(t["forward_s"] > 0 and t["preprocess_s"] > 0 for t in summary["encoders"].values())
    cost = extraction_cost(store)
    assert cost["videos"] == 12
    for name, e in cost["encoders"].items():
        files = sum(
            f.stat().st_size
            for f in (in_process_store / "features" / name).rglob("*")
            if f.is_file()
        )
        assert e["bytes"] == files > 0

    run = tmp_path / "run"
    labels = tmp_path / "labels.csv"
    vids = pq.read_table(in_process_store / "manifest.parquet").column("video_id").to_pylist()
    labels.write_text("video_id,label\n" + "".join(f"{v},{i % 2}\n" for i, v in enumerate(vids)))
    train(TrainConfig(store=store, labels=str(labels), epochs=3, batch_size=4, d_model=8,
                      pool_grid=1, fusion_options={"attn_dim": 8}, loader_workers=0,
                      out=str(run)), log=quiet)  # fmt: skip
    out = print_cost(store, price=2.0, runs=[str(run)], echo=quiet)
    per_video = (cost["decode_s"] + sum(e["preprocess_s"] + e["forward_s"]
                                        for e in cost["encoders"].values())) / 12  # fmt: skip
    assert out["extraction_s"] == pytest.approx(per_video * 12 + cost["write_s"])
    assert out["break_even_epochs"] == pytest.approx(out["extraction_s"] / (per_video * 12))
    (r,) = out["runs"]
    assert r["on_the_fly_s"] == pytest.approx(r["cached_s"] + 3 * 12 * per_video)
    assert r["runs"] == pytest.approx(out["extraction_s"] / (3 * 12 * per_video))

    with pytest.raises(SystemExit) as stop:
        main(["cost", store, "--price-per-hour", "2"])
    printed = capsys.readouterr().out
    assert stop.value.code == 0 and "per 1,000 videos" in printed and "break-even" in printed
    assert all(name in printed for name in cost["encoders"])


def test_a_store_without_telemetry_is_one_line(tmp_path, capsys):
    from tests.mixer.conftest import separable, write_store

    feats, y = separable(4, {"a": 2}, informative="a")
    write_store(str(tmp_path / "s.zarr"), feats, list(y), shard_size=4)
    with pytest.raises(SystemExit) as stop:
        main(["cost", str(tmp_path / "s.zarr")])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "has no extraction telemetry" in err
