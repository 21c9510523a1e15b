import numpy as np
import pytest
import zarr

from pipeline.corpus import plan_shards
from pipeline.sources import list_videos
from pipeline.store import FeatureStore, StoreError


def _row(row, vid, status="ok", error=None):
    return {
        "row": row,
        "video_id": vid,
        "source": f"/v/{vid}.mp4",
        "status": status,
        "error": error,
        "n_frames": 40,
        "fps": 16.0,
        "duration": 2.5,
        "sampled_indices": list(range(32)) if status == "ok" else None,
    }


def test_store_round_trip_is_sharded_float16(tmp_path):
    url = str(tmp_path / "s.zarr")
    ids = [f"v{i}" for i in range(5)]
    store = FeatureStore.create(
        url, ids, {"a": (8, {"fingerprint": "fa"}), "b": (4, {"fingerprint": "fb"})}, shard_size=2
    )
    rng = np.random.default_rng(0)
    written = {
        name: rng.standard_normal((5, 16, 64, c)).astype(np.float16)
        for name, c in (("a", 8), ("b", 4))
    }
    for shard in range(3):
        rows = store.shard_rows(shard)
        manifest = [_row(r, ids[r], *(("failed", "boom") if r == 3 else ())) for r in rows]
        block = {k: v[rows.start : rows.stop].copy() for k, v in written.items()}
        if shard == 1:
            block = {
                k: np.where(np.arange(2)[:, None, None, None] == 1, 0, v) for k, v in block.items()
            }
        store.write_shard(shard, block, manifest)

    reopened = FeatureStore.open(url)
    assert reopened.video_ids == ids and reopened.encoders == ["a", "b"]
    assert reopened.committed_shards() == {0, 1, 2}
    assert reopened.ok_rows().tolist() == [0, 1, 2, 4]
    ok = [0, 1, 2, 4]
    assert np.array_equal(reopened.read_rows("a", ok), written["a"][ok])
    assert np.array_equal(reopened.read_rows("b", [4, 0]), written["b"][[4, 0]])
    assert not reopened.read_rows("a", [3]).any()  # the failed row holds the fill value
    manifest = reopened.manifest().to_pylist()
    assert [m["status"] for m in manifest] == ["ok", "ok", "ok", "failed", "ok"]
    assert manifest[3]["error"] == "boom"

    arr = zarr.open_group(url, mode="r")["features/a"]
    assert arr.dtype == np.float16 and arr.shape == (5, 16, 64, 8)
    assert arr.chunks == (1, 16, 64, 8) and arr.shards == (2, 16, 64, 8)
    assert arr.metadata.dimension_names == ("video_id", "time", "token", "channel_a")
    assert zarr.open_group(url, mode="r")["features/video_id"][:].tolist() == ids


def test_shard_marker_is_written_only_with_valid_data(tmp_path):
    store = FeatureStore.create(str(tmp_path / "s.zarr"), ["a", "b"], {"x": (4, {})}, shard_size=2)
    with pytest.raises(StoreError, match="shape"):
        store.write_shard(0, {"x": np.zeros((1, 16, 64, 4))}, [_row(0, "a"), _row(1, "b")])
    with pytest.raises(StoreError, match="no features"):
        store.write_shard(0, {}, [_row(0, "a"), _row(1, "b")])
    with pytest.raises(StoreError, match="manifest rows"):
        store.write_shard(0, {"x": np.zeros((2, 16, 64, 4))}, [_row(0, "a")])
    assert store.committed_shards() == set()


def test_open_missing_store_says_what_to_do(tmp_path):
    with pytest.raises(StoreError, match="merv extract"):
        FeatureStore.open(str(tmp_path / "nothing.zarr"))


def test_listing_is_sorted_recursive_and_keeps_ids_unique(tmp_path):
    for rel in ["b.mp4", "a.mp4", "a.avi", "sub/c.mkv", "notes.txt"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    items = list_videos(str(tmp_path))
    assert [i.video_id for i in items] == ["a.avi", "a.mp4", "b", "sub/c"]
    assert [i.video_id for i in list_videos(str(tmp_path), all_files=True)][-1] == "sub/c"
    assert "notes" in [i.video_id for i in list_videos(str(tmp_path), all_files=True)]
    assert [i.video_id for i in list_videos(str(tmp_path / "*.mp4"))] == ["a", "b"]
    with pytest.raises(FileNotFoundError):
        list_videos(str(tmp_path / "missing"))


def test_shard_plan_is_deterministic():
    from pipeline.sources import VideoItem

    items = [VideoItem(v, v) for v in ["c", "a", "b", "e", "d"]]
    plan = plan_shards(items, 2)
    assert plan.video_ids == ("a", "b", "c", "d", "e")
    assert plan.num_shards == 3 and list(plan.shard_rows(2)) == [4]
    assert plan.shard_of(3) == 1
    assert plan_shards(list(reversed(items)), 2) == plan


def test_shard_plan_arithmetic_and_refusals():
    from pipeline.corpus import ShardPlan
    from pipeline.sources import VideoItem

    plan = ShardPlan(tuple("abcdefghij"), 4)
    assert (plan.num_rows, plan.num_shards) == (10, 3)
    assert [list(plan.shard_rows(s)) for s in range(3)] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]
    assert [plan.shard_of(r) for r in range(10)] == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    assert ShardPlan(tuple("abcdefgh"), 4).num_shards == 2  # exact multiple: no empty shard
    assert ShardPlan(("a",), 4).num_shards == 1
    with pytest.raises(ValueError, match="duplicate"):
        plan_shards([VideoItem("a", "x.mp4"), VideoItem("b", "y.mp4"), VideoItem("a", "z.mp4")], 2)
    with pytest.raises(ValueError, match="shard_size"):
        plan_shards([VideoItem("a", "x.mp4")], 0)
