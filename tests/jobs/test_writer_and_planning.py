"""The driver side of a job without Ray: planning work from commit markers, and the single
ShardWriter that turns encoded rows into whole-shard writes.

Rows are fed to ``ShardWriter.add`` exactly as ``jobs.extract._consume`` does, built by hand.
Every feature value is ``50 * row + 10 * t + c`` (+5 for encoder b, +1000 for a later run):
small integers, exact in float16, so a row that was zeroed, recomputed or misplaced shows up.
"""

import numpy as np
import pytest

from jobs.planning import open_or_create_store, plan_work
from jobs.writer import ShardWriter
from pipeline.corpus import VideoItem
from pipeline.rows import work_table
from pipeline.store import FeatureStore, StoreError
from tests.helpers import store_files

T = 2  # time steps; grid 1 -> one token per step
WIDTH = {"a": 3, "b": 2}


def _ids(n: int) -> list[str]:
    return [f"v{i:02d}" for i in range(n)]


def _items(ids) -> list[VideoItem]:
    return [VideoItem(v, f"/videos/{v}.mp4", extra={"label": int(v[1:]) % 3}) for v in ids]


def _store(tmp_path, n: int, encoders=("a", "b")) -> FeatureStore:
    return FeatureStore.create(
        str(tmp_path / "s.zarr"),
        _ids(n),
        {e: (WIDTH[e], {"fingerprint": f"f{e}"}) for e in encoders},
        shard_size=4,
        time_steps=T,
        grid=1,
    )


def _feat(row: int, enc: str, run: int = 0) -> np.ndarray:
    t = np.arange(T)[:, None, None]
    c = np.arange(WIDTH[enc])[None, None, :]
    return (50 * row + 10 * t + c + (5 if enc == "b" else 0) + 1000 * run).astype(np.float16)


def _rows(rows, enc: str, run: int = 0) -> np.ndarray:
    return np.stack([_feat(r, enc, run) for r in rows])


def _result(row: int, vid: str, encoders, run: int = 0, error: str | None = None) -> dict:
    """One row as the encoder stage hands it to the driver: zeros where it failed."""
    ok = error is None
    r = {
        "row": row,
        "video_id": vid,
        "status": "ok" if ok else "failed",
        "error": error or "",
        "source": f"/videos/{vid}.mp4",
        "n_frames": np.int64(40 + run),
        "fps": np.float64(16.0),
        "duration": np.float64(2.5),
        "height": np.int64(48),
        "width": np.int64(64),
        "decoder": "pyav",
        "sampled_indices": np.arange(32, dtype=np.int64) + run,
        "timestamps": np.arange(32) / 16.0,
        "extra": {"label": row % 3},
    }
    for e in encoders:
        r[f"feat:{e}"] = _feat(row, e, run) if ok else np.zeros((T, 1, WIDTH[e]), np.float16)
    return r


def _run(store, encoders, run=0, fail=None, retry_failed=False):
    """Plan from the store's markers and feed the writer every planned row; returns the work."""
    fail = fail or {}
    plan, work, missing = plan_work(store, _items(store.video_ids), list(encoders), retry_failed)
    assert missing == []
    writer = ShardWriter(store, plan, work)
    for row in [r for w in work for r in w.rows]:
        writer.add(_result(row, store.video_ids[row], encoders, run, fail.get(row)))
    assert writer.open_shards == []
    return work


def _column(store, name):
    return [m[name] for m in store.manifest().to_pylist()]


# ---------------------------------------------------------------------------------- planning


def test_new_store_rows_are_the_sorted_ids_and_appends_keep_them(tmp_path):
    from encoders import get_spec

    url = str(tmp_path / "s.zarr")
    specs = [get_spec("siglip-tiny")]
    first = [VideoItem(v, f"/v/{v}.mp4") for v in ["c", "a", "e", "b", "d"]]
    store, new, added = open_or_create_store(url, first, specs, 2, T, 1, 32)
    assert (store.video_ids, new, added) == (["a", "b", "c", "d", "e"], 0, [])
    assert store.num_shards == 3 and store.attrs["num_frames"] == 32
    more = first + [VideoItem(v, f"/v/{v}.mp4") for v in ["z", "aa", "f"]]
    specs.append(get_spec("dinov2-tiny"))
    store, new, added = open_or_create_store(url, more, specs, 2, T, 1, 32)
    # Existing rows never move; new ids go at the end, sorted among themselves.
    assert store.video_ids == ["a", "b", "c", "d", "e", "aa", "f", "z"]
    assert (new, added) == (3, ["dinov2-tiny"])
    assert store.encoders == ["siglip-tiny", "dinov2-tiny"]
    assert FeatureStore.open(url).video_ids == store.video_ids
    with pytest.raises(StoreError, match="shard_size=2, this job asks for 4"):
        open_or_create_store(url, more, specs, 4, T, 1, 32)


def test_changed_spec_is_refused_unless_overwritten_and_then_replanned(tmp_path):
    from encoders import get_spec

    url = str(tmp_path / "s.zarr")
    spec = get_spec("siglip-tiny")
    items = _items(_ids(3))
    store, _, _ = open_or_create_store(url, items, [spec], 4, T, 1, 32)
    rows = store.shard_rows(0)
    store.write_shard(
        0,
        {spec.name: np.ones((3, T, 1, spec.width), np.float16)},
        [{"row": r, "video_id": store.video_ids[r], "status": "ok"} for r in rows],
    )
    assert plan_work(store, items, [spec.name])[1] == []
    store.array(spec.name).attrs["fingerprint"] = "0123456789abcdef"  # another spec's features
    with pytest.raises(StoreError, match="--overwrite-encoder siglip-tiny"):
        open_or_create_store(url, items, [spec], 4, T, 1, 32)
    store, _, added = open_or_create_store(url, items, [spec], 4, T, 1, 32, overwrite=(spec.name,))
    assert added == [spec.name] and store.commits(spec.name) == {}
    assert not store.read(spec.name, 0, 3).any()  # the old features are gone
    assert [w.rows for w in plan_work(store, items, [spec.name])[1]] == [[0, 1, 2]]


def test_fresh_store_plans_every_row_in_shards_of_four(tmp_path):
    store = _store(tmp_path, 10)
    plan, work, missing = plan_work(store, _items(_ids(10)), ["a", "b"])
    assert plan.video_ids == tuple(_ids(10)) and plan.num_shards == 3
    assert [(w.shard, w.rows) for w in work] == [(0, [0, 1, 2, 3]), (1, [4, 5, 6, 7]), (2, [8, 9])]
    assert all(needs == ("a", "b") for w in work for needs in w.encoders_by_row.values())
    assert missing == []
    # The input lost a video the store has: it is planned (to fail with a reason), not dropped.
    items = [it for it in _items(_ids(10)) if it.video_id != "v05"]
    plan, work, missing = plan_work(store, items, ["a", "b"])
    assert missing == ["v05"]
    table = work_table(work, plan.video_ids, items).to_pylist()
    assert [r["row"] for r in table] == list(range(10))
    assert table[5]["source"] == "" and table[4]["source"] == "/videos/v04.mp4"
    assert table[4]["encoders"] == "a,b" and table[4]["extra"] == '{"label": 1}'
    assert np.isnan(table[4]["start"]) and np.isnan(table[4]["end"])


def test_planning_skips_what_markers_commit_and_retries_only_failures(tmp_path):
    store = _store(tmp_path, 10)
    items = _items(_ids(10))

    def write(shard, encoders, failed=None):
        rows = store.shard_rows(shard)
        store.write_shard(
            shard,
            {e: _rows(rows, e) for e in encoders},
            [{"row": r, "video_id": store.video_ids[r], "status": "ok"} for r in rows],
            failed,
        )

    write(0, ("a", "b"), failed={"a": {1: "encoder: a: nan"}, "b": {}})
    write(1, ("a",))
    work = plan_work(store, items, ["a", "b"])[1]
    assert [(w.shard, w.rows) for w in work] == [(1, [4, 5, 6, 7]), (2, [8, 9])]
    assert work[0].encoders_by_row == {4: ("b",), 5: ("b",), 6: ("b",), 7: ("b",)}
    assert work[1].encoders_by_row == {8: ("a", "b"), 9: ("a", "b")}
    assert plan_work(store, items, ["a"])[1][0].rows == [8, 9]  # a is done for shards 0 and 1

    retry = plan_work(store, items, ["a", "b"], retry_failed=True)[1]
    assert [(w.shard, w.rows) for w in retry][0] == (0, [1])
    assert retry[0].encoders_by_row == {1: ("a",)}  # only the encoder that failed it
    assert plan_work(store, items, ["b"], retry_failed=True)[1][0].shard == 1  # b: no failures

    write(1, ("b",))
    write(2, ("a", "b"))
    assert plan_work(store, items, ["a", "b"])[1] == []
    store.append_videos(["w0", "w1", "w2"])  # rows 10, 11 join shard 2, row 12 opens shard 3
    work = plan_work(store, _items(store.video_ids), ["a", "b"])[1]
    assert [(w.shard, w.rows) for w in work] == [(2, [10, 11]), (3, [12])]


# ---------------------------------------------------------------------------------- writing


def test_writer_writes_each_shard_whole_once_all_its_rows_arrived(tmp_path):
    store = _store(tmp_path, 6)
    plan, work, _ = plan_work(store, _items(_ids(6)), ["a", "b"])
    writer = ShardWriter(store, plan, work)
    add = [(0, None), (4, None), (1, None), (2, None), (5, None), (3, "corrupt: bad header")]
    for row, error in add[:5]:
        writer.add(_result(row, _ids(6)[row], ("a", "b"), error=error))
    assert writer.open_shards == [0]  # shard 1 (rows 4, 5) is complete and written
    assert store.committed_shards() == {1} and store.commit_marker("a", 0) is None
    assert [m["row"] for m in store.manifest().to_pylist()] == [4, 5]
    writer.add(_result(3, "v03", ("a", "b"), error="corrupt: bad header"))
    assert writer.open_shards == []

    assert store.committed_shards() == {0, 1}
    for enc in ("a", "b"):
        expected = _rows(range(6), enc)
        expected[3] = 0
        assert np.array_equal(store.read(enc, 0, 6), expected)
        assert store.commit_marker(enc, 0) == {
            "rows": [0, 4],
            "fingerprint": f"f{enc}",
            "failed": {3: "corrupt: bad header"},
        }
        assert store.commit_marker(enc, 1)["failed"] == {}
    assert _column(store, "status") == ["ok", "ok", "ok", "failed", "ok", "ok"]
    assert _column(store, "error") == [None, None, None, "corrupt: bad header", None, None]
    assert _column(store, "video_id") == _ids(6)
    assert _column(store, "n_frames") == [40] * 6 and _column(store, "label") == [0, 1, 2, 0, 1, 2]
    indices = _column(store, "sampled_indices")
    assert indices[0] == list(range(32)) and indices[3] is None
    assert store.ok_rows().tolist() == [0, 1, 2, 4, 5]


def test_retry_failed_rewrites_the_failed_row_and_keeps_the_others(tmp_path):
    store = _store(tmp_path, 6)
    _run(store, ("a", "b"), fail={3: "corrupt: bad header", 4: "corrupt: cut short"})
    before = store.manifest().to_pylist()
    assert _run(store, ("a", "b"), run=1) == []  # failures are not retried unless asked

    work = _run(store, ("a", "b"), run=1, retry_failed=True, fail={4: "corrupt: cut short"})
    assert [(w.shard, w.rows) for w in work] == [(0, [3]), (1, [4])]
    for enc in ("a", "b"):
        # Rows 0-2 and 5 keep the first run's values; row 3 holds the retry's; 4 failed again.
        expected = _rows(range(6), enc)
        expected[3] = _feat(3, enc, run=1)
        expected[4] = 0
        assert np.array_equal(store.read(enc, 0, 6), expected), enc
        assert store.commit_marker(enc, 0)["failed"] == {}
        assert store.commit_marker(enc, 1)["failed"] == {4: "corrupt: cut short"}
    after = store.manifest().to_pylist()
    assert [after[r] for r in (0, 1, 2, 5)] == [before[r] for r in (0, 1, 2, 5)]
    assert (after[3]["status"], after[3]["error"], after[3]["n_frames"]) == ("ok", None, 41)
    assert after[3]["sampled_indices"] == list(range(1, 33))
    assert (after[4]["status"], after[4]["error"]) == ("failed", "corrupt: cut short")
    assert store.ok_rows().tolist() == [0, 1, 2, 3, 5]


def test_added_encoder_writes_only_itself_and_keeps_the_old_failures(tmp_path):
    store = _store(tmp_path, 6, encoders=("a",))
    _run(store, ("a",), fail={3: "corrupt: bad header"})
    root = tmp_path / "s.zarr"
    a_files = store_files(root, "features/a", "_commits/a", mtimes=True)
    store.add_encoder("b", WIDTH["b"], {"fingerprint": "fb"})
    assert store.ok_rows().tolist() == []  # nothing is committed for b yet

    # Row 3's file was fixed since (b decodes it), and b itself fails on row 1.
    work = _run(store, ("a", "b"), run=1, fail={1: "encoder: b: out of memory"})
    assert [w.rows for w in work] == [[0, 1, 2, 3], [4, 5]]
    assert all(n == ("b",) for w in work for n in w.encoders_by_row.values())
    assert (
        store_files(root, "features/a", "_commits/a", mtimes=True) == a_files
    )  # a never rewritten

    expected_b = _rows(range(6), "b", run=1)
    expected_b[1] = 0
    assert np.array_equal(store.read("b", 0, 6), expected_b)
    assert store.commit_marker("b", 0)["failed"] == {1: "encoder: b: out of memory"}
    assert store.commit_marker("a", 0)["failed"] == {3: "corrupt: bad header"}
    # Row 3 is still failed: a's features for it are zeros, whatever b got.
    assert _column(store, "status") == ["ok", "failed", "ok", "failed", "ok", "ok"]
    assert _column(store, "error") == [
        None,
        "encoder: b: out of memory",
        None,
        "corrupt: bad header",
        None,
        None,
    ]
    assert store.ok_rows().tolist() == [0, 2, 4, 5]
    # Row 1 failed only for b and row 3 only for a: each counts for the other encoder.
    assert store.ok_rows(["a"]).tolist() == [0, 1, 2, 4, 5]
    assert store.ok_rows(["b"]).tolist() == [0, 2, 3, 4, 5]
    assert store.committed_shards() == {0, 1}


def test_appended_videos_leave_the_old_rows_of_their_shard_unchanged(tmp_path):
    store = _store(tmp_path, 5, encoders=("a",))
    _run(store, ("a",), fail={4: "corrupt: bad header"})
    root = tmp_path / "s.zarr"
    shard0 = store_files(
        root, "_commits/a/shard-00000.json", "_manifest/shard-00000.parquet", mtimes=True
    )
    old4 = store.manifest().to_pylist()[4]
    store.append_videos(["v05", "v06"])  # rows 5, 6 join shard 1 after the failed row 4

    work = _run(store, ("a",), run=1)
    assert [(w.shard, w.rows) for w in work] == [(1, [5, 6])]
    expected = _rows(range(7), "a")
    expected[4] = 0
    expected[5:] = _rows([5, 6], "a", run=1)
    assert np.array_equal(store.read("a", 0, 7), expected)
    assert store.commit_marker("a", 1) == {
        "rows": [4, 7],
        "fingerprint": "fa",
        "failed": {4: "corrupt: bad header"},
    }
    assert (
        store_files(
            root, "_commits/a/shard-00000.json", "_manifest/shard-00000.parquet", mtimes=True
        )
        == shard0
    )
    manifest = store.manifest().to_pylist()
    assert manifest[4] == old4
    assert [m["status"] for m in manifest] == ["ok"] * 4 + ["failed", "ok", "ok"]
    assert store.ok_rows().tolist() == [0, 1, 2, 3, 5, 6]
    assert store.committed_shards() == {0, 1}


def test_rows_are_pending_until_every_encoder_commits_them(tmp_path):
    store = _store(tmp_path, 7)
    _run(store, ("a",), fail={2: "corrupt: bad header"})  # a job that runs a only
    assert _column(store, "status") == ["pending", "pending", "failed"] + ["pending"] * 4
    assert _column(store, "error")[2] == "corrupt: bad header"
    assert store.ok_rows().tolist() == [] and store.committed_shards() == set()
    assert store.ok_rows(["a"]).tolist() == [0, 1, 3, 4, 5, 6]  # pending for b only
    assert store.committed_shards("a") == {0, 1}

    _run(store, ("b",), fail={2: "corrupt: bad header"})
    assert _column(store, "status") == ["ok", "ok", "failed"] + ["ok"] * 4
    assert store.ok_rows().tolist() == [0, 1, 3, 4, 5, 6]

    store.append_videos(["v07"])  # shard 1 grows; both markers cover rows 4-6 only
    _run(store, ("a",), run=1)
    assert _column(store, "status") == ["ok", "ok", "failed"] + ["ok"] * 4 + ["pending"]
    assert store.ok_rows().tolist() == [0, 1, 3, 4, 5, 6]
    _run(store, ("b",), run=1)
    assert _column(store, "status")[7] == "ok"
    assert np.array_equal(
        store.read_rows("b", [7, 6]), np.stack([_feat(7, "b", 1), _feat(6, "b", 0)])
    )


def test_status_counts_each_encoders_rows_from_its_markers(tmp_path):
    from jobs.status import format_status, store_status

    store = _store(tmp_path, 7)
    _run(store, ("a", "b"), fail={2: "corrupt: bad header"})
    store.append_videos(["v07"])  # shard 1 grows: row 7 pending for both
    _run(store, ("a",), run=1, fail={7: "encoder: a: nan"})
    info = store_status(store.url)
    assert (info["rows"], info["shards"]) == (8, {"total": 2, "committed": 1})
    counts = {n: [e[k] for k in ("ok", "failed", "pending")] for n, e in info["encoders"].items()}
    assert counts == {"a": [6, 2, 0], "b": [6, 1, 1]}
    assert info["failures"] == [
        {"video_id": "v02", "row": 2, "error": "corrupt: bad header", "encoders": ["a", "b"]},
        {"video_id": "v07", "row": 7, "error": "encoder: a: nan", "encoders": ["a"]},
    ]
    lines = format_status(info).splitlines()
    assert lines[0].startswith("store ") and "8 videos, shards 1/2 committed" in lines[0]
    assert lines[3].split() == ["b", "6", "1", "1", "2", "fb", "exact"]
