"""`merv embed` serves a distilled one-encoder student on new videos: its actors build only
that encoder, the stored fused tokens equal the student applied to the cached features of the
same videos, the probe's predictions reach the manifest, a broken file is a failure row, and
a rerun resumes (nothing left to do)."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch

from jobs.cli import main
from mixer import TrainConfig, load_model, train
from mixer.distill.student import student_config
from mixer.readers import pool_features
from pipeline.store import FeatureStore
from tests.helpers import noise_frames, quiet

STUDENT = "siglip-tiny"


@pytest.fixture(scope="module")
def student(tmp_path_factory, in_process_store):
    """A teacher on the four tiny encoders of the cluster corpus' store, and its student."""
    root = tmp_path_factory.mktemp("embed")
    store = FeatureStore.open(str(in_process_store))
    labels = root / "labels.csv"
    with open(labels, "w", newline="") as f:
        rows = [(v, "even" if i % 2 == 0 else "odd") for i, v in enumerate(store.video_ids)]
        csv.writer(f).writerows([("video_id", "label"), *rows])
    teacher = root / "teacher"
    train(TrainConfig(store=str(in_process_store), labels=str(labels), d_model=16, epochs=2,
                      batch_size=4, pool_grid=4, loader_workers=0, out=str(teacher)), log=quiet)  # fmt: skip
    out = root / "student"
    train(student_config(str(teacher), [STUDENT], out=str(out), epochs=2, loader_workers=0),
          log=quiet)  # fmt: skip
    return out


def test_embed_runs_only_the_students_encoder_and_matches_the_cache(
    student, cluster_corpus, in_process_store, tmp_path, ray_session, capsys
):
    corpus = tmp_path / "new_videos"
    shutil.copytree(cluster_corpus, corpus)
    (corpus / "broken.mp4").write_bytes(b"\x00not a video" * 64)
    out = tmp_path / "embedded.zarr"
    argv = ["embed", str(corpus), "--model", str(student), "--out", str(out), "--no-progress",
            "--shard-size", "2", "--batch-size", "2"]  # fmt: skip
    with pytest.raises(SystemExit) as stop:
        main(argv)
    assert stop.value.code == 0, capsys.readouterr().err
    embedded, cache = FeatureStore.open(str(out)), FeatureStore.open(str(in_process_store))
    assert embedded.encoders == ["fused"]
    summary = json.loads((out / "_jobs" / "extract_summary.json").read_text())
    assert set(summary["encoders"]) == {STUDENT, "fused"}  # only the student's encoder ran
    assert summary["ok"] == 12 and list(summary["failures"]) == ["broken"]

    model = load_model(student).eval()
    ids = [v for v in embedded.video_ids if v != "broken"]
    rows = np.array([embedded.video_ids.index(v) for v in ids])
    cached = np.stack([np.asarray(cache.read(STUDENT, r, r + 1))[0]
                       for r in (cache.video_ids.index(v) for v in ids)])  # fmt: skip
    x = torch.from_numpy(pool_features(cached, cache.grid, 4, None)).float()
    with torch.no_grad():
        want = model.fuse([x])[0].to(torch.float16).numpy()
    got = np.stack([np.asarray(embedded.read("fused", r, r + 1))[0] for r in rows])
    assert got.shape == (12, 16, 16, 16)
    diff = np.abs(got.reshape(12, -1, 16).astype(np.float32) - want.astype(np.float32)).max()
    assert diff <= 1e-3, diff
    assert np.abs(got).max() > 0.01  # real tokens, not the zeros of an empty row

    manifest = {r["video_id"]: r for r in embedded.manifest().to_pylist()}
    assert manifest["broken"]["status"] == "failed" and manifest["broken"]["error"]
    with torch.no_grad():
        expected = model.head(model.fuse([x])[0]).argmax(-1).tolist()
    assert [manifest[v]["prediction"] for v in ids] == [model.spec.classes[c] for c in expected]
    assert all(0.5 <= manifest[v]["prediction_score"] <= 1.0 for v in ids)

    capsys.readouterr()
    with pytest.raises(SystemExit) as again:  # resume: a finished store has nothing to do
        main(argv)
    assert again.value.code == 0
    assert "0 videos to process" in capsys.readouterr().out


def test_the_actor_builds_only_the_models_encoders(student, monkeypatch):
    """In-process: the encoder actor of an embed job builds the student's one encoder, never
    the other three the teacher read."""
    import encoders.base
    from jobs.embed import embed_plan
    from jobs.workers import EncoderActor

    built = []
    real = encoders.base.build_encoder

    def spy(spec, **kw):
        built.append(spec.name)
        return real(spec, **kw)

    monkeypatch.setattr(encoders.base, "build_encoder", spy)
    plan = embed_plan(str(student))
    actor = EncoderActor([s.to_dict() for s in plan.encoder_specs], {}, "fp32", False, 0,
                         plan.time_steps, plan.grid, batch_size=2, model=plan.actor)  # fmt: skip
    assert built == [STUDENT]
    frames = np.empty(2, dtype=object)
    frames[:] = [noise_frames(32, 64, 64, seed) for seed in (0, 1)]
    batch = {"frames": frames, "status": np.asarray(["ok", "ok"]), "error": np.asarray(["", ""]),
             "encoders": np.asarray(["fused", "fused"]), "row": np.arange(2),
             "extra": np.asarray(["{}", "{}"])}  # fmt: skip
    out = actor(batch)
    assert out["feat:fused"].shape == (2, 16, 16, 16) and f"feat:{STUDENT}" not in out
    assert all(json.loads(x)["prediction"] in ("even", "odd") for x in out["extra"])


def test_embed_refuses_a_model_it_cannot_serve(tmp_path, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["embed", str(tmp_path), "--model", str(tmp_path / "nope"), "--out",
              str(tmp_path / "o.zarr")])  # fmt: skip
    assert stop.value.code == 2
    assert "no checkpoint there" in capsys.readouterr().err
