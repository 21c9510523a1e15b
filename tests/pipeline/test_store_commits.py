"""FeatureStore rows, commit markers and what counts as done, on small hand-checked stores.

Every feature value is ``50 * row + 10 * t + c`` (+5 for encoder b): small integers, exact in
float16, so a row read back in the wrong place or left as zeros shows up by value.
"""

import json

import numpy as np
import pytest

from pipeline.store import FeatureStore, StoreError

T = 2  # time steps; grid 1 -> one token per step
WIDTH = {"a": 3, "b": 2}
IDS = [f"v{i:02d}" for i in range(10)]  # 10 rows, shards of 4: rows 0-3, 4-7, 8-9


def _feat(row: int, enc: str) -> np.ndarray:
    t = np.arange(T)[:, None, None]
    c = np.arange(WIDTH[enc])[None, None, :]
    return (50 * row + 10 * t + c + (5 if enc == "b" else 0)).astype(np.float16)


def _block(rows, enc: str) -> np.ndarray:
    return np.stack([_feat(r, enc) for r in rows])


def _entry(row: int, vid: str, status: str = "ok", error: str | None = None) -> dict:
    return {
        "row": row,
        "video_id": vid,
        "source": f"/v/{vid}.mp4",
        "status": status,
        "error": error,
    }


def _store(tmp_path, ids=IDS, encoders=("a", "b")) -> FeatureStore:
    return FeatureStore.create(
        str(tmp_path / "s.zarr"),
        ids,
        {e: (WIDTH[e], {"fingerprint": f"f{e}"}) for e in encoders},
        shard_size=4,
        time_steps=T,
        grid=1,
    )


def _write(store: FeatureStore, shard: int, encoders=("a", "b"), failed_rows=(), failed=None):
    rows = store.shard_rows(shard)
    manifest = [
        _entry(r, store.video_ids[r], *(("failed", "corrupt: x") if r in failed_rows else ()))
        for r in rows
    ]
    feats = {e: _block(rows, e) for e in encoders}
    for e in encoders:
        feats[e][[r - rows.start for r in failed_rows]] = 0
    store.write_shard(shard, feats, manifest, failed)


def test_shard_rows_by_hand(tmp_path):
    store = _store(tmp_path)
    assert store.num_shards == 3
    assert [store.shard_rows(s) for s in range(3)] == [range(0, 4), range(4, 8), range(8, 10)]
    store.append_videos(["w0", "w1"])  # the last shard fills up
    assert store.num_shards == 3 and store.shard_rows(2) == range(8, 12)
    store.append_videos(["w2"])  # and a new one starts
    assert store.num_shards == 4 and store.shard_rows(3) == range(12, 13)
    assert FeatureStore.open(store.url).video_ids == [*IDS, "w0", "w1", "w2"]


def test_read_rows_returns_rows_in_the_requested_order(tmp_path):
    store = _store(tmp_path)
    for shard in range(3):
        _write(store, shard)
    for rows in ([1, 0, 2], [3, 1], [2, 2, 1, 2], [9, 0, 5, 4, 9, 3], [7], [8, 9, 0, 1]):
        got = store.read_rows("a", rows)
        assert got.dtype == np.float16 and got.shape == (len(rows), T, 1, 3)
        assert got[:, 0, 0, 0].tolist() == [50.0 * r for r in rows], rows
        assert np.array_equal(got, _block(rows, "a")), rows
    assert np.array_equal(store.read_rows("b", iter([6, 4])), _block([6, 4], "b"))
    assert store.read_rows("a", []).shape == (0, T, 1, 3)
    assert np.array_equal(store.read("b", 3, 6), _block([3, 4, 5], "b"))


def test_ok_rows_need_a_committed_marker_for_every_encoder(tmp_path):
    store = _store(tmp_path)
    _write(store, 0, failed_rows=[1])  # both encoders; row 1 failed to decode
    _write(store, 1, encoders=("a",))  # manifest says ok, but b was never committed here
    # Manifest ok for rows 8 and 9, but encoder b failed row 9 (its marker lists it).
    _write(store, 2, failed={"a": {}, "b": {9: "encoder: b: nan"}})

    assert [m["status"] for m in store.manifest().to_pylist()] == ["ok", "failed"] + ["ok"] * 8
    assert store.ok_rows().tolist() == [0, 2, 3, 8]
    assert store.ok_rows(["a"]).tolist() == [0, 2, 3, 4, 5, 6, 7, 8, 9]
    assert store.ok_rows(["b"]).tolist() == [0, 2, 3, 8]
    assert store.committed_shards() == {0, 2}
    assert store.committed_shards("a") == {0, 1, 2}
    assert store.committed_shards("b") == {0, 2}
    marker = json.loads((tmp_path / "s.zarr" / "_commits" / "b" / "shard-00002.json").read_text())
    files = marker.pop("files")  # the shard file's size and sha256 (test_store_integrity_unit)
    assert set(files) == {"features/b/c/2/0/0/0"}
    assert marker == {"rows": [8, 10], "fingerprint": "fb", "failed": {"9": "encoder: b: nan"}}
    assert store.commit_marker("a", 0)["failed"] == {1: "corrupt: x"}
    assert store.commit_marker("b", 1) is None


def test_marker_covering_a_prefix_commits_only_that_prefix(tmp_path):
    store = _store(tmp_path)
    for shard in range(3):
        _write(store, shard)
    assert store.committed_shards() == {0, 1, 2}
    store.append_videos(["w0", "w1"])  # shard 2 grows to rows 8-11; its markers say [8, 10)
    assert store.covered_rows("a", 2) == range(8, 10)
    assert store.covered_rows("a", 1) == range(4, 8)
    assert store.committed_shards() == {0, 1}
    assert store.committed_shards("b") == {0, 1}
    assert store.ok_rows().tolist() == list(range(10))

    _write(store, 2, encoders=("b",))  # all four rows for b, manifest ok for all of them
    assert store.covered_rows("b", 2) == range(8, 12)
    assert store.covered_rows("a", 2) == range(8, 10)  # a's old marker still covers two rows
    assert store.committed_shards("b") == {0, 1, 2}
    assert store.committed_shards("a") == {0, 1}
    assert store.committed_shards() == {0, 1}
    assert store.ok_rows(["b"]).tolist() == list(range(12))
    assert store.ok_rows(["a"]).tolist() == list(range(10))
    assert store.ok_rows().tolist() == list(range(10))


def test_rewriting_a_shard_replaces_its_marker(tmp_path):
    store = _store(tmp_path, encoders=("a",))
    _write(store, 0, encoders=("a",), failed_rows=[2])
    assert store.ok_rows().tolist() == [0, 1, 3]
    _write(store, 0, encoders=("a",))  # the failure fixed: a whole-shard rewrite
    assert store.commit_marker("a", 0) == {"rows": [0, 4], "fingerprint": "fa", "failed": {}}
    assert store.ok_rows().tolist() == [0, 1, 2, 3]
    assert np.array_equal(store.read_rows("a", [2]), _block([2], "a"))


def test_manifest_rows_must_match_the_shard(tmp_path):
    store = _store(tmp_path, encoders=("a",))
    with pytest.raises(StoreError, match="manifest rows"):  # one row short
        store.write_shard(0, {"a": _block(range(4), "a")}, [_entry(r, IDS[r]) for r in range(3)])
    with pytest.raises(StoreError, match="manifest rows"):  # the last shard has only 8 and 9
        store.write_shard(
            2, {"a": _block(range(8, 10), "a")}, [_entry(r, f"v{r:02d}") for r in range(8, 12)]
        )
    with pytest.raises(StoreError, match="shape"):
        store.write_shard(
            2, {"a": _block(range(8, 12), "a")}, [_entry(r, IDS[r]) for r in range(8, 10)]
        )
    assert store.committed_shards() == set()


def test_row_status_per_encoder_whole_store_and_one_shard(tmp_path):
    store = _store(tmp_path)
    _write(store, 0, failed_rows=[1])
    _write(store, 1, encoders=("a",), failed={"a": {6: "encoder: a: nan"}})
    store.append_videos(["w0"])  # shard 2 has rows 8-10, nothing committed there
    assert store.row_status("a").tolist() == (
        ["ok", "failed", "ok", "ok"] + ["ok", "ok", "failed", "ok"] + ["pending"] * 3
    )
    assert store.row_status("b").tolist() == ["ok", "failed", "ok", "ok"] + ["pending"] * 7
    assert store.row_status("a", 1).tolist() == ["ok", "ok", "failed", "ok"]
    assert store.row_status("b", 1).tolist() == ["pending"] * 4
    assert store.row_status("a", 2).tolist() == ["pending"] * 3
    # Markers the caller has read already are used as they are (nothing is read again).
    assert store.row_status("a", 1, store.commits("a", 1)).tolist() == ["ok", "ok", "failed", "ok"]
    assert store.row_status("a", 1, {}).tolist() == ["pending"] * 4
    assert store.row_status("b", markers=store.commits("a")).tolist() == (
        store.row_status("a").tolist()
    )
    assert store.commits("b", 1) == {} and store.commits("a", 0) == {0: store.commit_marker("a", 0)}
    # ok_rows counts only the encoders asked for: row 6 failed for a only, 4-7 pending for b.
    assert store.ok_rows(["b"]).tolist() == [0, 2, 3]
    assert store.ok_rows(["a"]).tolist() == [0, 2, 3, 4, 5, 7]
    assert store.ok_rows().tolist() == store.ok_rows(["a", "b"]).tolist() == [0, 2, 3]
    with pytest.raises(StoreError, match="'zzz' is not in store"):
        store.ok_rows(["zzz"])


def test_ids_are_utf8_bytes_grown_for_longer_ids_and_a_string_coordinate(tmp_path):
    import zarr

    store = _store(tmp_path, ids=["b", "a/é"])
    index = zarr.open_group(store.url, mode="r")["index/video_id"]
    assert index.dtype == np.uint8 and index.shape == (2, 4)  # "a/é" is 4 bytes
    assert bytes(index[1]) == "a/é".encode() and bytes(index[0]) == b"b\0\0\0"
    store.append_videos(["c" * 9, "d"])
    group = zarr.open_group(store.url, mode="r")
    assert group["index/video_id"].shape == (4, 9)
    assert group["features/video_id"][:].tolist() == ["b", "a/é", "c" * 9, "d"]
    assert FeatureStore.open(store.url).video_ids == ["b", "a/é", "c" * 9, "d"]
    assert store.num_shards == 1 and store.read_rows("a", [3]).shape == (1, T, 1, 3)
    with pytest.raises(StoreError, match="NUL"):
        store.append_videos(["bad\0id"])
    empty = FeatureStore.create(str(tmp_path / "e.zarr"), [], {"a": (3, {})}, shard_size=4)
    assert FeatureStore.open(empty.url).video_ids == [] and empty.ok_rows().tolist() == []


def _version_1_store(url: str) -> None:
    """A store as format version 1 wrote it: string ids, one "channel" dimension name."""
    import zarr

    group = zarr.open_group(url, mode="w-", zarr_format=3)
    attrs = {"merv_store_version": 1, "time_steps": T, "grid": 1, "shard_size": 4}
    group.attrs.update({**attrs, "num_rows": 6, "encoders": ["a"], "sampling": "..."})
    index = group.create_array("index/video_id", shape=(6,), dtype=str, chunks=(6,))
    index[:] = np.asarray(IDS[:6], dtype=object)
    arr = group.create_array(
        "features/a",
        shape=(6, T, 1, 3),
        chunks=(1, T, 1, 3),
        shards=(4, T, 1, 3),
        dtype="float16",
        fill_value=0.0,
        dimension_names=("video", "time", "token", "channel"),
    )
    arr.attrs.update({"spec": {"fingerprint": "fa"}, "fingerprint": "fa"})


def test_a_version_1_store_is_read_and_grown_in_its_own_form(tmp_path):
    import zarr

    url = str(tmp_path / "v1.zarr")
    _version_1_store(url)
    store = FeatureStore.open(url, mode="r+")
    assert store.version == 1 and store.video_ids == IDS[:6] and store.num_shards == 2
    _write(store, 0, encoders=("a",), failed_rows=[2])
    assert store.ok_rows().tolist() == [0, 1, 3]
    assert np.array_equal(store.read_rows("a", [3, 0]), _block([3, 0], "a"))
    store.append_videos(["w0"])
    store.add_encoder("b", WIDTH["b"], {"fingerprint": "fb"})
    group = zarr.open_group(url, mode="r")
    assert group["index/video_id"][:].tolist() == [*IDS[:6], "w0"]  # still strings
    assert "video_id" not in group["features"]
    assert group["features/b"].metadata.dimension_names == ("video", "time", "token", "channel")
    assert group.attrs["merv_store_version"] == 1
    reopened = FeatureStore.open(url)
    assert reopened.video_ids == [*IDS[:6], "w0"] and reopened.encoders == ["a", "b"]
    assert reopened.row_status("a").tolist() == ["ok", "ok", "failed", "ok"] + ["pending"] * 3


def test_an_unknown_format_version_is_refused_in_one_line(tmp_path):
    import zarr

    store = _store(tmp_path)
    zarr.open_group(store.url, mode="r+").attrs["merv_store_version"] = 3
    with pytest.raises(StoreError, match=r"format version 3; .* reads versions 1, 2: upgrade"):
        FeatureStore.open(store.url)
