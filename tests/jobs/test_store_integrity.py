"""Store integrity end to end: damaged markers, shards and root metadata are reported by
`merv verify` and healed by the next `merv extract`, to a store bitwise equal to a clean run."""

import logging
import shutil

import pytest

from jobs.status import store_status
from jobs.verify import verify_store
from pipeline.store import FeatureStore, StoreError
from tests.helpers import run_extract_quietly, store_files

ENC = "siglip-tiny"
SHARD = "features/siglip-tiny/c/1/0/0/0"  # rows 2-3
MARKER = "_commits/siglip-tiny/shard-00001.json"


def _extract(corpus, store):
    return run_extract_quietly(corpus, store, ENC, shard_size=2, batch_size=2)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, synthetic_corpus, ray_session):
    store = tmp_path_factory.mktemp("clean") / "s.zarr"
    _extract(synthetic_corpus[0], store)
    return store


@pytest.fixture
def damaged(tmp_path, clean):
    store = tmp_path / "s.zarr"
    shutil.copytree(clean, store)
    return store


def _verify(store) -> tuple[int, list[str]]:
    lines = []
    return verify_store(str(store), echo=lines.append), lines


def test_a_zero_byte_marker_is_not_committed_and_a_rerun_heals_it(
    damaged, clean, synthetic_corpus, caplog
):
    (damaged / MARKER).write_bytes(b"")  # a disk that filled while the marker was written
    with caplog.at_level(logging.WARNING):
        info = store_status(str(damaged))  # no JSON traceback: the shard is pending
    assert info["encoders"][ENC]["pending"] == 2
    assert "unreadable" in caplog.text and "shard 1" in caplog.text
    assert _extract(synthetic_corpus[0], damaged).processed == 2
    assert store_files(damaged, skip=("_jobs",)) == store_files(clean, skip=("_jobs",))


def _delete_shard(store):
    (store / SHARD).unlink()


def _truncate_shard(store):
    data = (store / SHARD).read_bytes()
    (store / SHARD).write_bytes(data[: len(data) // 2])


def _garbage_marker(store):
    (store / MARKER).write_bytes(b'{"rows": [2, 4], "fail')


@pytest.mark.parametrize(
    "damage, problem",
    [
        (_delete_shard, "missing file"),
        (_truncate_shard, "bytes, committed"),
        (_garbage_marker, "unreadable commit marker"),
    ],
    ids=["deleted-shard", "truncated-shard", "garbage-marker"],
)
def test_verify_reports_damage_and_extract_repairs_it(
    damaged, clean, synthetic_corpus, damage, problem
):
    assert _verify(damaged)[0] == 0
    damage(damaged)
    code, lines = _verify(damaged)
    assert code == 1
    assert any(ENC in line and " 1 " in line and problem in line for line in lines), lines
    assert _extract(synthetic_corpus[0], damaged).processed == 2  # only the damaged shard
    assert store_files(damaged, skip=("_jobs",)) == store_files(clean, skip=("_jobs",))
    assert _verify(damaged)[0] == 0


def test_a_same_size_corruption_is_found_by_the_checksum(damaged):
    data = bytearray((damaged / SHARD).read_bytes())
    data[10] ^= 0xFF
    (damaged / SHARD).write_bytes(bytes(data))
    code, lines = _verify(damaged)
    assert code == 1 and any("checksum" in line for line in lines), lines


def test_a_lost_root_is_refused_in_one_line_and_rebuilt_by_verify(damaged, clean, synthetic_corpus):
    (damaged / "zarr.json").unlink()
    for call in (
        lambda: FeatureStore.open(str(damaged)),
        lambda: store_status(str(damaged)),
        lambda: _extract(synthetic_corpus[0], damaged),
    ):
        with pytest.raises(StoreError) as err:
            call()
        assert f"merv verify {damaged} --repair-root" in str(err.value)
        assert "\n" not in str(err.value)
    assert verify_store(str(damaged), repair_root=True, echo=[].append) == 0
    assert store_files(damaged, skip=("_jobs",)) == store_files(clean, skip=("_jobs",))
    assert _extract(synthetic_corpus[0], damaged).processed == 0


def test_a_training_read_of_a_damaged_shard_fails_in_one_line(damaged):
    _truncate_shard(damaged)
    store = FeatureStore.open(str(damaged))
    assert store.read_rows(ENC, [0, 1]).shape[0] == 2  # other shards still read
    with pytest.raises(StoreError) as err:
        store.read_rows(ENC, [3, 0])
    msg = str(err.value)
    assert "shard 1" in msg and f"merv verify {damaged}" in msg and "\n" not in msg
    assert err.value.__cause__ is None and err.value.__suppress_context__
