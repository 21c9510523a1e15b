"""Every input format through the whole job (local Ray): WebDataset tars, a clip manifest and an
s3:// bucket on a loopback S3 server each give the store local files give (same rows, bitwise
features); the bad-input zoo plus the real clips runs to completion with one right status each.
"""

import csv
import shutil
import tarfile

import numpy as np
import pytest

from pipeline.failures import reason_class
from pipeline.rows import DECODE_COLUMNS, LISTING_COLUMNS
from pipeline.store import FeatureStore
from tests.helpers import run_extract_quietly
from tests.pipeline.zoo import (
    ZooEntry,
    dead_url,
    expected_rows,
    frames,
    lossless,
    make_zoo,
    serve_folder,
    write_clip,
    write_manifest,
)

ENCODER = "dinov2-tiny"
CORE = ("row", "video_id", "status", "error", *DECODE_COLUMNS)  # the manifest minus source


def _extract(input_: str, store: str, **kw) -> FeatureStore:
    # batch_size 1: each video is encoded alone, so features cannot depend on batch company.
    run_extract_quietly(input_, store, ENCODER, **{"shard_size": 3, "batch_size": 1, **kw})
    return FeatureStore.open(store)


def _snapshot(store: FeatureStore) -> tuple[dict[str, dict], np.ndarray]:
    rows = {m["video_id"]: {k: m.get(k) for k in CORE} for m in store.manifest().to_pylist()}
    return rows, store.read(ENCODER, 0, store.num_rows)


def _assert_same_store(a: FeatureStore, b: FeatureStore) -> None:
    (rows_a, feats_a), (rows_b, feats_b) = _snapshot(a), _snapshot(b)
    assert a.video_ids == b.video_ids and rows_a == rows_b
    assert all(r["status"] == "ok" for r in rows_a.values())
    assert feats_a.dtype == np.float16 and np.array_equal(feats_a, feats_b)  # bitwise
    assert np.abs(feats_a.astype(np.float32)).sum(axis=(1, 2, 3)).min() > 0


CLIPS = {"x": (1.0, 2.0, 16, 32), "y": (0.5, None, 8, 40), "z": (None, 1.25, 0, 20)}  # s, frames


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, real_corpus, ray_session):
    """Generated clips (one in a sub-folder), a real one, and x/y/z: pre-cut pieces of longer
    lossless videos kept in whole/, all extracted once from local disk."""
    root = tmp_path_factory.mktemp("inputs")
    videos, whole = root / "videos", root / "whole"
    (videos / "sub").mkdir(parents=True)
    whole.mkdir()
    write_clip(str(videos / "a.mp4"), frames(24, seed=1))
    write_clip(str(videos / "b.mkv"), frames(40, seed=2))
    write_clip(str(videos / "sub" / "c.webm"), frames(9, seed=3), codec="libvpx-vp9")
    shutil.copy(real_corpus / "mmaction2_part_0.mp4", videos / "real.mp4")
    for i, (vid, (_, _, lo, hi)) in enumerate(CLIPS.items()):
        raw = frames(40, seed=10 + i)
        lossless(str(whole / f"{vid}_full.mp4"), raw)  # 16 fps, lossless: cut == clip pixels
        lossless(str(videos / f"{vid}.mp4"), raw[lo:hi])
    baseline = _extract(str(videos), str(root / "local.zarr"))
    assert baseline.video_ids == ["a", "b", "real", "sub/c", "x", "y", "z"]
    return root, videos, baseline


def test_webdataset_tars_give_the_local_store(corpus):
    root, videos, baseline = corpus
    names = sorted(p.relative_to(videos).as_posix() for p in videos.rglob("*") if p.is_file())
    for shard, part in (("s-000.tar", names[:3]), ("s-001.tar", names[3:])):
        with tarfile.open(root / shard, "w") as tar:
            for name in part:
                tar.add(str(videos / name), arcname=name)
                key = name.split(".")[0]
                (root / "meta.json").write_text(f'{{"caption": "clip {key}"}}')
                tar.add(str(root / "meta.json"), arcname=f"{key}.json")
    store = _extract(str(root / "s-{000..001}.tar"), str(root / "tars.zarr"))
    _assert_same_store(baseline, store)
    manifest = {m["video_id"]: m for m in store.manifest().to_pylist()}
    assert manifest["sub/c"]["caption"] == "clip sub/c"  # sidecar json carried along
    assert manifest["a"]["source"] == f"tar://a.mp4::{root / 's-000.tar'}"


def test_clip_manifest_gives_the_store_of_the_cut_files(corpus):
    root, videos, baseline = corpus
    rows = [("video_id", "path", "start", "end", "label")]
    for i, vid in enumerate(["a", "b", "real", "sub/c"]):  # whole videos, relative paths
        path = next(p for p in videos.rglob("*") if p.is_file() and p.stem == vid.split("/")[-1])
        rows.append((vid, path.relative_to(root).as_posix(), "", "", i))
    for vid, (start, end, _, _) in CLIPS.items():  # clips of the longer videos
        rows.append((vid, f"whole/{vid}_full.mp4", start or "", end or "", vid.upper()))
    with open(root / "clips.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    clipped = _extract(str(root / "clips.csv"), str(root / "clips.zarr"))
    (a, fa), (b, fb) = _snapshot(clipped), _snapshot(baseline)
    assert clipped.video_ids == baseline.video_ids
    assert np.array_equal(fa, fb)  # bitwise, clips included
    for vid in ("a", "b", "real", "sub/c"):
        assert a[vid] == b[vid]
    for vid, (_, _, lo, _) in CLIPS.items():
        got, want = a[vid], b[vid]
        # Indices and times count from the source's start, not the clip's.
        assert got["sampled_indices"] == [i + lo for i in want["sampled_indices"]]
        assert np.allclose(got["timestamps"], np.add(want["timestamps"], lo / 16))
        for key in ("row", "status", "n_frames", "fps", "height", "width", "decoder"):
            assert got[key] == want[key], (vid, key)
        assert got["duration"] == pytest.approx(want["duration"])
    manifest = {m["video_id"]: m for m in clipped.manifest().to_pylist()}
    assert (manifest["x"]["clip_start"], manifest["x"]["clip_end"]) == (1.0, 2.0)
    assert manifest["z"]["label"] == "Z" and manifest["a"]["clip_start"] is None


def test_s3_bucket_input_and_store_give_the_local_store(corpus, s3_server, monkeypatch):
    import fsspec

    _, videos, baseline = corpus
    # The driver reaches the bucket through fsspec's config (the store is written there);
    # decode workers get the same options through the job's storage_options.
    monkeypatch.setitem(fsspec.config.conf, "s3", dict(s3_server))
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir("corpus")
    fs.put(str(videos), "corpus/videos", recursive=True)
    store = _extract(
        "s3://corpus/videos/", "s3://corpus/stores/features.zarr", storage_options=dict(s3_server)
    )
    _assert_same_store(baseline, store)
    assert store.manifest().to_pylist()[0]["source"] == "s3://corpus/videos/a.mp4"
    assert fs.exists("corpus/stores/features.zarr/manifest.parquet")


def test_bad_input_zoo_and_real_clips_run_to_completion(tmp_path, real_corpus, ray_session):
    folder = tmp_path / "zoo"
    with serve_folder(str(folder.parent)) as base:
        entries = make_zoo(str(folder), http_base=f"{base}/zoo", dead_url=dead_url())
        for clip in sorted(real_corpus.iterdir()):
            entries.append(ZooEntry(f"real/{clip.name}", str(clip), "ok"))
        manifest = write_manifest(entries, str(tmp_path / "zoo.csv"))
        store = _extract(manifest, str(tmp_path / "zoo.zarr"), shard_size=8, batch_size=4)
    rows = {m["video_id"]: m for m in store.manifest().to_pylist()}
    expected = expected_rows(entries)
    assert len(expected) >= 20 + len(list(real_corpus.iterdir()))
    assert sorted(rows) == sorted(expected) == store.video_ids
    assert {v: (r["status"], reason_class(r["error"])) for v, r in rows.items()} == expected
    feats = store.read(ENCODER, 0, store.num_rows).astype(np.float32)
    for vid, r in rows.items():
        energy = np.abs(feats[r["row"]]).sum()
        assert (energy > 0) == (r["status"] == "ok"), vid  # failed rows stay empty
        assert not set(LISTING_COLUMNS) & set(r)  # how a row is read is not stored
