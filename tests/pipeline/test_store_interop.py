"""A store opens in the ecosystem's own readers, the way a user would try it.

- ``xarray.open_zarr(STORE, group="features")``: one Dataset, every encoder a variable with its
  own channel dimension, ``video_id`` an index coordinate equal to the store's ids.
- tensorstore's ``zarr3`` driver: every array of the store with zarr-python's values, except
  ``features/video_id``. That array exists for xarray alone and holds zarr-python's
  variable-length ``string`` data type, which tensorstore's zarr3 driver does not have (it
  reads bool, int, uint, float, complex and raw-bits types only). No single array type works
  for both: xarray gives a 1-D string coordinate only from ``string``, ``fixed_length_utf32``
  or ``null_terminated_bytes`` arrays, and tensorstore refuses all three. The store's own
  index, ``index/video_id`` (uint8 UTF-8 bytes), holds the same ids and tensorstore reads it.
"""

import json
from pathlib import Path

import numpy as np
import pytest
import zarr

from pipeline.store import FeatureStore

xr = pytest.importorskip("xarray")
ts = pytest.importorskip("tensorstore")

T, G = 2, 2  # time steps, grid: 4 tokens per step
WIDTHS = {"dinov2-tiny": 3, "siglip-tiny": 5, "vivit": 2}
IDS = ["cats/001", "cats/002", "dogs/é-1", "x"]
TENSORSTORE_CANNOT_OPEN = {"features/video_id"}  # zarr-python's `string` data type


def _store(tmp_path) -> FeatureStore:
    url = str(tmp_path / "s.zarr")
    store = FeatureStore.create(
        url,
        IDS,
        {e: (w, {"fingerprint": f"f-{e}"}) for e, w in WIDTHS.items()},
        shard_size=2,
        time_steps=T,
        grid=G,
    )
    rng = np.random.default_rng(0)
    for shard in range(store.num_shards):
        rows = store.shard_rows(shard)
        manifest = [{"row": r, "video_id": IDS[r], "status": "ok"} for r in rows]
        feats = {
            e: rng.standard_normal((len(rows), T, G * G, w)).astype(np.float16)
            for e, w in WIDTHS.items()
        }
        store.write_shard(shard, feats, manifest)
    store.append_videos(["zebra/longer-id-than-any"])  # ids grown after creation, row 4 empty
    return store


def _arrays(root: Path) -> list[str]:
    """Every array of the store, by its path under the root (from the zarr.json files)."""
    found = []
    for meta in sorted(root.rglob("zarr.json")):
        if json.loads(meta.read_text())["node_type"] == "array":
            found.append(meta.parent.relative_to(root).as_posix())
    return found


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # no consolidated metadata: expected
def test_xarray_opens_the_features_as_one_dataset_with_a_video_id_coordinate(tmp_path):
    store = _store(tmp_path)
    ds = xr.open_zarr(store.url, group="features")
    assert sorted(ds.data_vars) == sorted(WIDTHS)
    assert list(ds.coords) == ["video_id"] and "video_id" in ds.indexes
    assert ds["video_id"].values.tolist() == store.video_ids == [*IDS, "zebra/longer-id-than-any"]
    group = zarr.open_group(store.url, mode="r")
    for name, width in WIDTHS.items():
        var = ds[name]
        assert var.dims == ("video_id", "time", "token", f"channel_{name}")
        assert var.shape == (5, T, G * G, width) and var.dtype == np.float16
        np.testing.assert_array_equal(var.values, group[f"features/{name}"][:])
    picked = ds["siglip-tiny"].sel(video_id="dogs/é-1").values
    np.testing.assert_array_equal(picked, store.read_rows("siglip-tiny", [2])[0])


def test_tensorstore_opens_every_array_with_zarr_pythons_values(tmp_path):
    store = _store(tmp_path)
    root = Path(store.url)
    arrays = _arrays(root)
    assert set(arrays) == {
        "index/video_id",
        "features/video_id",
        *(f"features/{e}" for e in WIDTHS),
    }
    group = zarr.open_group(store.url, mode="r")
    for path in arrays:
        spec = {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / path)}}
        if path in TENSORSTORE_CANNOT_OPEN:
            with pytest.raises(ValueError, match="string data type is not one of the supported"):
                ts.open(spec).result()
            continue
        got = ts.open(spec).result().read().result()
        want = group[path][:]
        assert got.dtype == want.dtype and got.shape == want.shape, path
        np.testing.assert_array_equal(got, want, err_msg=path)
    index = ts.open(
        {"driver": "zarr3", "kvstore": {"driver": "file", "path": str(root / "index/video_id")}}
    ).result()
    ids = [bytes(row).rstrip(b"\0").decode() for row in index.read().result()]
    assert ids == store.video_ids
