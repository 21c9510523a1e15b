"""Through the whole job (test session's Ray, in-process): non-files become ``not-a-file`` rows
within seconds, a store inside the input folder is never its own input, and a poison-pill video
that SIGKILLs its decode worker becomes a ``worker-crash`` row while the job finishes."""

import os
import shutil
import threading

import pytest

from pipeline import failures
from pipeline.failures import reason_class
from pipeline.store import FeatureStore
from tests.helpers import run_extract_quietly

ENCODER = "dinov2-tiny"


def _bounded(fn, seconds=240):
    box = {}
    t = threading.Thread(target=lambda: box.update(value=fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"the job blocked for {seconds} s"
    assert "value" in box, "the job raised (see the thread's traceback above)"
    return box["value"]


def _clips(synthetic_corpus, folder, n):
    folder.mkdir(parents=True, exist_ok=True)
    clips = sorted(p for p in synthetic_corpus[0].rglob("*") if p.is_file())[:n]
    for clip in clips:
        shutil.copy(clip, folder / clip.name)
    return [c.stem for c in clips]


def _rows(store):
    return {m["video_id"]: m for m in FeatureStore.open(str(store)).manifest().to_pylist()}


def test_non_files_fail_and_the_store_is_not_input(tmp_path, synthetic_corpus, ray_session):
    folder = tmp_path / "in"
    good = _clips(synthetic_corpus, folder, 2)
    os.mkfifo(folder / "fifo.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / "x.mp4").mkdir()
    store = folder / "features.zarr"  # inside the input folder, listed with --all-files
    cfg = {"shard_size": 2, "batch_size": 2, "all_files": True}
    _bounded(lambda: run_extract_quietly(folder, store, ENCODER, **cfg))
    rows = _rows(store)
    assert sorted(rows) == sorted([*good, "fifo", "x", "zero"])  # no file of the store
    for vid in good:
        assert rows[vid]["status"] == "ok", rows[vid]
    for vid in ("fifo", "x", "zero"):
        assert reason_class(rows[vid]["error"]) == failures.NOT_A_FILE, rows[vid]
    rerun = _bounded(lambda: run_extract_quietly(folder, store, ENCODER, **cfg))
    assert rerun.planned == 0 and sorted(_rows(store)) == sorted(rows)


def test_poison_pill_becomes_worker_crash(tmp_path, synthetic_corpus, ray_session, monkeypatch):
    folder = tmp_path / "in"
    ids = _clips(synthetic_corpus, folder, 4)
    poison = ids[1]
    monkeypatch.setenv("MERV_FAULT", f"decode_video:{poison}")  # forwarded to decode workers
    store = tmp_path / "store.zarr"
    cfg = {"shard_size": 2, "batch_size": 2, "max_video_retries": 1}
    telemetry = _bounded(lambda: run_extract_quietly(folder, store, ENCODER, **cfg))
    rows = _rows(store)
    assert sorted(rows) == sorted(ids)
    assert reason_class(rows[poison]["error"]) == failures.WORKER_CRASH, rows[poison]
    assert "2 attempts" in rows[poison]["error"]
    assert all(rows[v]["status"] == "ok" for v in ids if v != poison), rows
    assert telemetry.failed == 1


@pytest.fixture(autouse=True)
def _no_inherited_fault(monkeypatch):
    monkeypatch.delenv("MERV_FAULT", raising=False)
