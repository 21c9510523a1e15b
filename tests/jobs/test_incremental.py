"""Incremental runs: new encoders, new videos, changed specs, retried failures."""

import shutil

import numpy as np
import pytest
import zarr

from jobs.cli import run
from pipeline.store import FeatureStore, StoreError
from pipeline.synthetic import ClipSpec, render_clip, write_video
from tests.helpers import run_extract_quietly, store_files


def _extract(corpus, store, encoders, **kw):
    return run_extract_quietly(corpus, store, encoders, shard_size=4, batch_size=2, **kw)


@pytest.fixture
def corpus(tmp_path, synthetic_corpus):
    folder = tmp_path / "videos"
    shutil.copytree(synthetic_corpus[0], folder)
    return folder


def test_added_encoder_computes_only_itself(tmp_path, corpus, ray_session):
    store = tmp_path / "s.zarr"
    _extract(corpus, store, "dinov2-tiny")
    before = store_files(store, "features/dinov2-tiny", "_commits/dinov2-tiny", mtimes=True)
    telemetry = _extract(corpus, store, "dinov2-tiny,siglip-tiny")
    assert telemetry.processed == 8  # decoded again for the new encoder only
    after = store_files(store, "features/dinov2-tiny", "_commits/dinov2-tiny", mtimes=True)
    assert after == before  # same bytes, never rewritten
    st = FeatureStore.open(str(store))
    assert st.encoders == ["dinov2-tiny", "siglip-tiny"]
    assert st.ok_rows().tolist() == list(range(8))
    assert (np.abs(st.read("siglip-tiny", 0, 8).astype(np.float32)).sum(axis=(1, 2, 3)) > 0).all()
    assert _extract(corpus, store, "dinov2-tiny,siglip-tiny").processed == 0


def test_new_videos_add_only_new_rows(tmp_path, corpus, ray_session):
    store = tmp_path / "s.zarr"
    held_back = sorted(corpus.iterdir())[1::3]  # ids that sort between the others
    aside = tmp_path / "aside"
    aside.mkdir()
    for p in held_back:
        shutil.move(p, aside / p.name)
    _extract(corpus, store, "siglip-tiny")
    old = FeatureStore.open(str(store))
    old_ids, old_feats = old.video_ids, old.read("siglip-tiny", 0, old.num_rows).copy()
    assert old.num_rows == 5
    for p in aside.iterdir():
        shutil.move(p, corpus / p.name)
    telemetry = _extract(corpus, store, "siglip-tiny")
    assert telemetry.processed == 3  # only the new videos were decoded and encoded
    st = FeatureStore.open(str(store))
    assert st.video_ids[:5] == old_ids  # existing rows never move
    assert st.video_ids[5:] == sorted(p.stem for p in held_back)  # new ones appended, sorted
    assert np.array_equal(st.read("siglip-tiny", 0, 5), old_feats)
    assert st.ok_rows().tolist() == list(range(8))
    assert zarr.open_group(str(store), mode="r")["features/siglip-tiny"].shape[0] == 8


def test_changed_spec_is_refused_unless_overwritten(tmp_path, corpus, ray_session):
    store = tmp_path / "s.zarr"
    _extract(corpus, store, "siglip-tiny")
    arr = zarr.open_group(str(store), mode="r+")["features/siglip-tiny"]
    arr.attrs["fingerprint"] = "0123456789abcdef"  # as if extracted with another spec
    with pytest.raises(StoreError, match="--overwrite-encoder siglip-tiny"):
        _extract(corpus, store, "siglip-tiny")
    telemetry = _extract(corpus, store, "siglip-tiny", overwrite_encoders=["siglip-tiny"])
    assert telemetry.processed == 8
    st = FeatureStore.open(str(store))
    from encoders import get_spec

    assert st.encoder_attrs("siglip-tiny")["fingerprint"] == get_spec("siglip-tiny").fingerprint()
    assert st.ok_rows().tolist() == list(range(8))


def test_retry_failed_recomputes_only_failures(tmp_path, corpus, ray_session, capsys):
    store = tmp_path / "s.zarr"
    broken = corpus / "zz_broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    first = _extract(corpus, store, "siglip-tiny")
    assert first.failed == 1 and first.ok == 8
    assert run(["status", str(store), "--failed"]) == 0
    out = capsys.readouterr().out
    assert "1 failed videos" in out and "zz_broken" in out
    frames = render_clip(ClipSpec("red_left", n_frames=20, size=64, shape_size=12, y=5, seed=9))
    write_video(str(broken), frames)  # the file is fixed
    assert _extract(corpus, store, "siglip-tiny").processed == 0  # failures are not retried...
    retried = _extract(corpus, store, "siglip-tiny", retry_failed=True)  # ...unless asked
    assert retried.processed == 1 and retried.ok == 1
    st = FeatureStore.open(str(store))
    assert st.ok_rows().tolist() == list(range(9))
