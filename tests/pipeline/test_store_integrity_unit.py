"""Atomic small writes, unreadable markers, shard checksums and the store's read errors, on
small hand-made stores (no extraction)."""

import json
import logging

import fsspec
import numpy as np
import pytest

from pipeline.store import FeatureStore, StoreError
from pipeline.store.files import write_atomic
from pipeline.store.markers import parse_marker

T, W = 2, 3
IDS = [f"v{i}" for i in range(4)]  # shards of 2: rows 0-1, 2-3


def _store(tmp_path) -> FeatureStore:
    store = FeatureStore.create(
        str(tmp_path / "s.zarr"), IDS, {"a": (W, {"fingerprint": "fa"})}, 2, time_steps=T, grid=1
    )
    for shard, value in ((0, 1.0), (1, 0.0)):  # shard 1 failed: all zeros, no file
        rows = store.shard_rows(shard)
        manifest = [
            {"row": r, "video_id": IDS[r], "status": "ok" if value else "failed", "error": None}
            for r in rows
        ]
        store.write_shard(shard, {"a": np.full((2, T, 1, W), value)}, manifest)
    return store


def test_atomic_write_replaces_whole_and_leaves_nothing_behind(tmp_path):
    fs = fsspec.filesystem("file")
    path = str(tmp_path / "d" / "m.json")
    write_atomic(fs, path, b"old")
    write_atomic(fs, path, b"new")
    assert (tmp_path / "d" / "m.json").read_bytes() == b"new"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["m.json"]
    with pytest.raises(TypeError):  # a write that fails midway: the old file stays whole
        write_atomic(fs, path, object())
    assert (tmp_path / "d" / "m.json").read_bytes() == b"new"
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["m.json"]


def test_memory_filesystem_writes_through_a_rename(tmp_path):
    fs = fsspec.filesystem("memory")
    write_atomic(fs, "/x/m.json", b"data")
    assert fs.cat("/x/m.json") == b"data" and fs.ls("/x", detail=False) == ["/x/m.json"]


@pytest.mark.parametrize(
    "data",
    [b"", b"{", b"[]", b'{"rows": [0]}', b'{"rows": ["0", 2]}', b'{"rows": [0, 2], "files": 3}'],
)
def test_malformed_markers_parse_as_none(data):
    assert parse_marker(data) is None


def test_markers_record_size_and_checksum_or_absence(tmp_path):
    store = _store(tmp_path)
    files0 = store.scan_markers("a")[0][0]["files"]
    (rel, rec) = next(iter(files0.items()))
    assert rel == "features/a/c/0/0/0/0"
    assert rec["size"] == (tmp_path / "s.zarr" / rel).stat().st_size
    assert rec["sha256"].startswith("sha256:")
    assert store.scan_markers("a")[0][1]["files"] == {"features/a/c/1/0/0/0": "absent"}
    assert store.damaged(hashes=True, deep=True) == []


def test_unreadable_marker_is_pending_with_one_warning(tmp_path, caplog):
    store = _store(tmp_path)
    (tmp_path / "s.zarr" / "_commits" / "a" / "shard-00000.json").write_text("garbage")
    with caplog.at_level(logging.WARNING):
        assert store.row_status("a").tolist() == ["pending", "pending", "failed", "failed"]
        assert store.ok_rows().tolist() == []
    assert len(caplog.records) == 1 and "unreadable" in caplog.text
    assert [(d.shard, d.problem) for d in store.damaged()] == [(0, "unreadable commit marker")]


def test_size_then_hash_then_absence(tmp_path):
    store = _store(tmp_path)
    shard0 = tmp_path / "s.zarr" / "features/a/c/0/0/0/0"
    data = bytearray(shard0.read_bytes())
    data[0] ^= 1
    shard0.write_bytes(bytes(data))
    assert store.damaged(hashes=False) == []  # same size: only the hash sees it
    assert "checksum" in store.damaged(hashes=True)[0].problem
    shard0.write_bytes(bytes(data[:-1]))
    assert "bytes, committed" in store.damaged()[0].problem
    shard0.unlink()
    assert store.damaged()[0].problem.startswith("missing file")
    stray = tmp_path / "s.zarr" / "features/a/c/1/0/0/0"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    assert [d.shard for d in store.damaged()] == [0, 1]
    store.invalidate(store.damaged())
    assert not stray.exists() and store.commits("a") == {}


def test_reads_of_an_undecodable_shard_fail_in_one_line(tmp_path):
    store = _store(tmp_path)
    shard0 = tmp_path / "s.zarr" / "features/a/c/0/0/0/0"
    shard0.write_bytes(shard0.read_bytes()[:-3])
    for call in (lambda: store.read("a", 0, 2), lambda: store.read_rows("a", [1])):
        with pytest.raises(StoreError, match=r"a shard 0 .*merv verify") as err:
            call()
        assert "\n" not in str(err.value)
    assert "bytes, committed" in store.damaged(deep=True)[0].problem  # size first
    marker = json.loads((tmp_path / "s.zarr/_commits/a/shard-00001.json").read_text())
    assert marker["files"] == {"features/a/c/1/0/0/0": "absent"}


def test_deep_decodes_shards_whose_marker_has_no_checksums(tmp_path):
    store = _store(tmp_path)
    marker_path = tmp_path / "s.zarr/_commits/a/shard-00000.json"
    old = {k: v for k, v in json.loads(marker_path.read_text()).items() if k != "files"}
    marker_path.write_text(json.dumps(old))  # a marker of an older version: no checksums
    shard0 = tmp_path / "s.zarr" / "features/a/c/0/0/0/0"
    shard0.write_bytes(shard0.read_bytes()[:-3])
    assert store.damaged(hashes=True) == []
    assert "rows do not decode" in store.damaged(hashes=True, deep=True)[0].problem
