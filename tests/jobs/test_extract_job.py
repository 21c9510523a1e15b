"""End to end through the CLI on real clips, generated clips and broken files (local Ray)."""

import csv
import json
import os

import numpy as np
import pytest
import zarr

from encoders import ENCODER_SETS, get_spec
from jobs.cli import run
from jobs.status import store_status
from pipeline.store import FeatureStore
from tests.helpers import direct_encode

TINY = ENCODER_SETS["tiny"]


def _extract_args(folder, store) -> list[str]:
    return f"extract {folder} --store {store} --encoders tiny --shard-size 4 --no-progress".split()


@pytest.fixture(scope="module")
def extracted_mixed(tmp_path_factory, real_corpus, ray_session):
    """The real mp4/avi/mkv clips plus a corrupt and an empty file, extracted once."""
    import shutil

    folder = tmp_path_factory.mktemp("mixed")
    for clip in sorted(real_corpus.iterdir()):
        shutil.copy(clip, folder / clip.name)
    (folder / "corrupt.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom" + os.urandom(4096))
    (folder / "empty.avi").write_bytes(b"")
    store = str(tmp_path_factory.mktemp("out") / "store.zarr")
    code = run(_extract_args(folder, store))
    return folder, store, code


def test_every_clip_gets_one_row_per_encoder(extracted_mixed, real_corpus):
    _, store, code = extracted_mixed
    assert code == 0
    n_real = len(list(real_corpus.iterdir()))
    group = zarr.open_group(store, mode="r")
    for name in TINY:
        arr = group[f"features/{name}"]
        assert arr.dtype == np.float16
        assert arr.shape == (n_real + 2, 16, 64, get_spec(name).width)
        assert arr.shards == (4, 16, 64, get_spec(name).width) and arr.chunks[0] == 1
        assert arr.attrs["fingerprint"] == get_spec(name).fingerprint()
    ids = [str(v) for v in group["features/video_id"][:]]
    assert ids == sorted(ids) and len(ids) == n_real + 2


def test_bad_files_become_failed_rows_with_reasons(extracted_mixed, real_corpus):
    _, store, _ = extracted_mixed
    st = FeatureStore.open(store)
    manifest = {m["video_id"]: m for m in st.manifest().to_pylist()}
    assert manifest["corrupt"]["status"] == "failed"
    assert manifest["empty"]["status"] == "failed"
    for bad in ("corrupt", "empty"):
        assert "decord:" in manifest[bad]["error"] and "pyav:" in manifest[bad]["error"]
    ok = [m for m in manifest.values() if m["status"] == "ok"]
    assert len(ok) == len(list(real_corpus.iterdir()))
    for m in ok:
        assert m["error"] is None and len(m["sampled_indices"]) == 32
        assert m["sampled_indices"] == [int(x) for x in np.linspace(0, m["n_frames"] - 1, 32)]
    for name in TINY:
        feats = st.read_rows(name, [m["row"] for m in ok]).astype(np.float32)
        assert np.isfinite(feats).all() and (np.abs(feats).sum(axis=(1, 2, 3)) > 0).all()
        failed_rows = [manifest["corrupt"]["row"], manifest["empty"]["row"]]
        assert not st.read_rows(name, failed_rows).any()
    info = store_status(store)
    assert info["encoders"][TINY[0]]["failed"] == 2 and info["encoders"][TINY[0]]["pending"] == 0
    assert {f["video_id"] for f in info["failures"]} == {"corrupt", "empty"}


def test_stored_features_equal_a_direct_encode(extracted_mixed):
    """What the Ray job stored is what the encoder + alignment compute in-process."""
    from pipeline.decode import decode_video

    folder, store, _ = extracted_mixed
    st = FeatureStore.open(store)
    row = st.video_ids.index("mmaction2_test.avi")  # stem shared with the .mp4: keeps its extension
    video = decode_video(str(folder / "mmaction2_test.avi"))
    # The job pads every forward to batch_size (4 by default) on one torch thread; so does
    # direct_encode. Bitwise equality: a transposed grid, a wrong layer or a misplaced cast fails.
    for name in TINY:
        expected = direct_encode(name, video.frames, pad_to=4)
        np.testing.assert_array_equal(st.read_rows(name, [row])[0], expected, err_msg=name)


def test_job_saves_config_summary_and_manifest(extracted_mixed):
    _, store, _ = extracted_mixed
    assert "shard_size: 4" in open(os.path.join(store, "_jobs", "extract.yaml")).read()
    summary = json.load(open(os.path.join(store, "_jobs", "extract_summary.json")))
    assert summary["failed"] == 2 and set(summary["failures"]) == {"corrupt", "empty"}
    import pyarrow.parquet as pq

    assert pq.read_table(os.path.join(store, "manifest.parquet")).num_rows == summary["videos"]


def test_rerun_resumes_and_changes_nothing(extracted_mixed, capsys):
    folder, store, _ = extracted_mixed
    before = FeatureStore.open(store).read("dinov2-tiny", 0, 4).copy()
    assert run(_extract_args(folder, store)) == 0
    assert "0 videos to process" in capsys.readouterr().out
    assert np.array_equal(FeatureStore.open(store).read("dinov2-tiny", 0, 4), before)


def test_status_command(extracted_mixed, capsys):
    _, store, _ = extracted_mixed
    assert run(["status", store]) == 0
    out = capsys.readouterr().out
    assert "2 failed videos" in out and "dinov2-tiny" in out
    assert run(["status", store, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["rows"] == len(FeatureStore.open(store).video_ids)


def test_train_cli_on_a_fresh_store(tmp_path, synthetic_corpus, ray_session, capsys):
    folder, labels = synthetic_corpus
    store = str(tmp_path / "s.zarr")
    assert (
        run(
            [
                "extract",
                str(folder),
                "--store",
                store,
                "--encoders",
                "dinov2-tiny,siglip-tiny",
                "--no-progress",
            ]
        )
        == 0
    )
    labels_csv = tmp_path / "labels.csv"
    with open(labels_csv, "w", newline="") as f:
        csv.writer(f).writerows([("video_id", "label"), *labels])
    out = tmp_path / "run"
    assert (
        run(["train", store, "--labels", str(labels_csv), "--epochs", "3", "--out", str(out)]) == 0
    )
    printed = capsys.readouterr().out
    assert "epoch 3/3" in printed and "val_acc" in printed
    results = json.load(open(out / "results.json"))
    assert len(results["train_loss"]) == 3
    assert set(results["mixer_weights"]) == {"dinov2-tiny", "siglip-tiny"}
    assert (out / "model.safetensors").is_file()
