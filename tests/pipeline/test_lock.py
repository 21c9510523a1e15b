"""The store's one-writer lock (pipeline/store/lock.py): lease, refusal, takeover, renewal."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
import uuid

import pytest

from pipeline.store import StoreError
from pipeline.store.lock import LOCK_FILE, StoreLock, StoreLockedError


@pytest.fixture(params=["local", "memory"])
def store_url(request, tmp_path):
    """A store location on local disk (os.link) and on fsspec's memory filesystem ("xb")."""
    if request.param == "local":
        return str(tmp_path / "store.zarr")
    return f"memory://locktest-{uuid.uuid4().hex}/store.zarr"


def _record(lock: StoreLock) -> dict:
    with lock.fs.open(lock.path, "rb") as f:
        return json.loads(f.read())


def _plant(url: str, **fields) -> StoreLock:
    """Write a lock record as another job would have left it (nothing renews it)."""
    other = StoreLock(url)
    other.fs.makedirs(other.root, exist_ok=True)
    record = {**other._record(), "expires_at": time.time() + 600, **fields}
    other.fs.pipe_file(other.path, json.dumps(record).encode())
    return other


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_acquire_writes_a_record_and_release_removes_it(store_url):
    lock = StoreLock(store_url, lease_s=30).acquire()
    try:
        rec = _record(lock)
        assert rec["token"] == lock.token and rec["pid"] > 0 and rec["host"]
        assert rec["expires_at"] == pytest.approx(time.time() + 30, abs=5)
        assert lock.path.endswith(f"store.zarr/{LOCK_FILE}")
    finally:
        lock.release()
    assert not lock.fs.exists(lock.path)
    StoreLock(store_url).acquire().release()  # free again


def test_second_acquire_is_refused_naming_holder_and_since(store_url):
    first = StoreLock(store_url, lease_s=30).acquire()
    try:
        with pytest.raises(StoreLockedError) as info:
            StoreLock(store_url).acquire()
        msg = str(info.value)
        assert isinstance(info.value, StoreError) and "\n" not in msg
        rec = _record(first)
        assert f"pid {rec['pid']}" in msg and rec["host"] in msg
        assert f"since {rec['started']}" in msg and "--break-lock" in msg
        assert _record(first)["token"] == first.token  # the refused job left it alone
    finally:
        first.release()


def test_context_manager_releases_on_error(store_url):
    with pytest.raises(ValueError):
        with StoreLock(store_url):
            raise ValueError("boom")
    with StoreLock(store_url) as lock:
        assert lock.held


def test_expired_lease_is_taken_over_with_a_warning(store_url, caplog):
    _plant(store_url, host="elsewhere", expires_at=time.time() - 1)
    with caplog.at_level(logging.WARNING, logger="pipeline.store.lock"):
        lock = StoreLock(store_url).acquire()
    try:
        assert _record(lock)["token"] == lock.token
        assert "lease expired" in caplog.text and "elsewhere" in caplog.text
        assert [p for p in lock.fs.ls(lock.root, detail=False) if "_lock.break-" in p] == []
    finally:
        lock.release()


def test_live_lease_elsewhere_is_not_taken_over(store_url):
    other = _plant(store_url, host="elsewhere", pid=1)
    with pytest.raises(StoreLockedError, match="host elsewhere, pid 1"):
        StoreLock(store_url).acquire()
    assert _record(other)["token"] == other.token


def test_dead_local_pid_is_taken_over(store_url, caplog):
    pid = _dead_pid()
    _plant(store_url, pid=pid)  # this host, lease still valid, process gone
    with caplog.at_level(logging.WARNING, logger="pipeline.store.lock"):
        lock = StoreLock(store_url).acquire()
    try:
        assert _record(lock)["token"] == lock.token
        assert f"process {pid} on this host is gone" in caplog.text
    finally:
        lock.release()


def test_taking_over_a_record_that_changed_meanwhile_fails(store_url):
    stale = _plant(store_url, host="elsewhere", expires_at=time.time() - 1)
    stale_record = _record(stale)
    fresh = _plant(store_url, host="elsewhere")  # someone took it over first
    taker = StoreLock(store_url)
    assert not taker._take_over(stale_record)
    assert _record(fresh)["token"] == fresh.token


def test_renewal_extends_the_expiry(store_url):
    lock = StoreLock(store_url, lease_s=30).acquire()
    try:
        before = _record(lock)["expires_at"]
        lock.lease_s = 60  # a longer lease: the renewed expiry is later whatever the clock did
        assert lock.renew()
        assert _record(lock)["expires_at"] > before
    finally:
        lock.release()


def test_renewal_thread_keeps_a_short_lease_alive(store_url):
    lock = StoreLock(store_url, lease_s=0.6).acquire()
    try:
        first = _record(lock)["expires_at"]
        deadline = time.time() + 10
        while _record(lock)["expires_at"] == first and time.time() < deadline:
            time.sleep(0.05)
        assert _record(lock)["expires_at"] > first
        assert not lock.lost
    finally:
        lock.release()


def test_a_replaced_lock_is_reported_lost(store_url):
    with pytest.raises(StoreLockedError, match="lost its lock"):
        with StoreLock(store_url, lease_s=30) as lock:
            _plant(store_url, host="elsewhere")
            assert not lock.renew()
    assert lock.fs.exists(lock.path)  # the new holder's record is left in place


def test_a_lapsed_lease_is_not_renewed(store_url):
    lock = StoreLock(store_url, lease_s=30).acquire()
    try:
        lock.expires_at = time.time() - 1
        assert not lock.renew() and "lapsed" in lock.lost
    finally:
        lock.release()


def test_break_lock_removes_a_live_lock(store_url, caplog):
    _plant(store_url, host="elsewhere")
    with caplog.at_level(logging.WARNING, logger="pipeline.store.lock"):
        lock = StoreLock(store_url, break_lock=True).acquire()
    try:
        assert _record(lock)["token"] == lock.token and "--break-lock" in caplog.text
    finally:
        lock.release()


def test_unreadable_lock_is_refused_in_one_line(store_url):
    lock = StoreLock(store_url)
    lock.fs.makedirs(lock.root, exist_ok=True)
    lock.fs.pipe_file(lock.path, b"{not json")
    with pytest.raises(StoreLockedError, match="unreadable lock file.*--break-lock"):
        lock.acquire()
    StoreLock(store_url, break_lock=True).acquire().release()
