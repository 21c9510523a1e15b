"""One writer per store: a lease file, ``STORE/_lock.json``, taken before a job plans.

The file holds who holds the lock (host, pid, a random token), since when and until when
(``expires_at``: the lease). The holder renews the lease from a daemon thread every third of
it and removes the file when it is done. Taking the lock is a conditional create, so of two jobs
racing for a store exactly one wins:

- local disk: the record is written to a private temporary file, then hard-linked to the lock
  path (``os.link`` fails if the path exists; readers never see a half-written record);
- other fsspec filesystems: ``open(path, "xb")`` (s3fs sends ``If-None-Match: *``; memory and
  most others refuse an existing path); a filesystem without ``"xb"`` falls back to
  check-then-write, confirmed by reading the record back (a lease file, best effort).

A lock whose lease has expired, or whose holder ran on this host and whose process is gone, is
stale and is taken over: the taker first wins ``_lock.break-<token>`` (the same conditional
create, so one taker per stale record), re-reads the lock to check it still holds that record,
then replaces it. A holder that finds its lease lapsed or its record replaced stops renewing and
reports the lock lost. ``break_lock`` removes any lock first (the holder is known dead).
"""

from __future__ import annotations

import json
import logging
import os
import posixpath
import secrets
import socket
import threading
import time
from datetime import datetime, timezone

import fsspec
from fsspec.implementations.local import LocalFileSystem

from pipeline.store.errors import StoreError

log = logging.getLogger(__name__)

LOCK_FILE = "_lock.json"
DEFAULT_LEASE_S = 60.0
# Tests only: a job that has taken a lock waits until this file exists (a handshake that lets a
# test start a second job while the first one certainly holds the lock).
PAUSE_ENV = "MERV_LOCK_PAUSE"


class StoreLockedError(StoreError):
    """Another job holds the store's lock, or this job lost it."""


def _iso(t: float) -> str:
    try:
        return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (ValueError, OverflowError, OSError):  # a record from a broken clock
        return f"{t} (epoch seconds)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def stale_reason(record: dict, now: float | None = None) -> str | None:
    """Why a lock record no longer protects anyone (None while its holder may be alive)."""
    now = time.time() if now is None else now
    if float(record["expires_at"]) < now:
        return f"its lease expired at {_iso(float(record['expires_at']))}"
    if record["host"] == socket.gethostname() and not _pid_alive(int(record["pid"])):
        return f"its process {record['pid']} on this host is gone"
    return None


class StoreLock:
    """The lease on one store; ``with StoreLock(url):`` holds it for the block."""

    def __init__(self, url: str, lease_s: float | None = None, break_lock: bool = False):
        self.url = url.rstrip("/")
        self.fs, root = fsspec.core.url_to_fs(self.url)
        self.root = root.rstrip("/")
        self.path = posixpath.join(self.root, LOCK_FILE)
        self.lease_s = float(lease_s or DEFAULT_LEASE_S)
        self.break_lock = break_lock
        self.token = secrets.token_hex(8)
        self.started_at = time.time()
        self.expires_at = 0.0
        self.held = False
        self.lost: str | None = None  # why the lock was lost while held
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ the record
    def _record(self) -> dict:
        return {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "token": self.token,
            "started_at": self.started_at,
            "expires_at": self.expires_at,
            "started": _iso(self.started_at),
            "expires": _iso(self.expires_at),
        }

    def _encode(self) -> bytes:
        return json.dumps(self._record(), indent=2).encode()

    def read(self) -> dict | None:
        """The lock record now at the lock path (None when there is none)."""
        try:
            with self.fs.open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        try:
            record = json.loads(data)
            float(record["started_at"]), float(record["expires_at"]), int(record["pid"])
            if not {"host", "token"} <= record.keys():
                raise KeyError("host")
            return record
        except (ValueError, KeyError, TypeError) as err:
            raise StoreLockedError(
                f"store {self.url}: unreadable lock file {self.path}; if no job is writing to "
                f"the store, rerun with --break-lock"
            ) from err

    # ------------------------------------------------------------------ file primitives
    def _create(self, path: str, data: bytes) -> bool:
        """Create ``path`` holding ``data`` unless it exists; True when this call created it."""
        if isinstance(self.fs, LocalFileSystem):
            tmp = f"{path}.{self.token}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            try:
                os.link(tmp, path)
                return True
            except FileExistsError:
                return False
            finally:
                os.unlink(tmp)
        try:
            with self.fs.open(path, "xb") as f:
                f.write(data)
            return True
        except FileExistsError:
            return False
        except (ValueError, NotImplementedError):  # no exclusive create: lease file, best effort
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
            return True

    def _replace(self, path: str, data: bytes) -> None:
        if isinstance(self.fs, LocalFileSystem):
            tmp = f"{path}.{self.token}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        else:
            self.fs.pipe_file(path, data)

    def _remove(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    # ------------------------------------------------------------------ acquire / release
    def acquire(self) -> StoreLock:
        """Take the lock, or raise ``StoreLockedError`` naming the holder."""
        self._made_root = not self.fs.exists(self.root)
        self.fs.makedirs(self.root, exist_ok=True)  # the lock lives inside the store folder
        if self.break_lock and self.fs.exists(self.path):
            log.warning("--break-lock: removing the lock on %s", self.url)
            self._remove(self.path)
        for _ in range(5):
            self.expires_at = time.time() + self.lease_s
            if self._create(self.path, self._encode()):
                return self._confirm()
            held = self.read()
            if held is None:
                continue  # released meanwhile: try again
            why = stale_reason(held)
            if why is None:
                raise StoreLockedError(self._refusal(held))
            log.warning(
                "taking over the lock on %s from host %s pid %s (since %s): %s",
                self.url,
                held["host"],
                held["pid"],
                _iso(float(held["started_at"])),
                why,
            )
            if self._take_over(held):
                return self._confirm()
        raise StoreLockedError(f"store {self.url}: other jobs keep taking its lock; try again")

    def _take_over(self, stale: dict) -> bool:
        """Replace the stale record (re-checked) with ours; False if someone else moved first."""
        marker = posixpath.join(self.root, f"_lock.break-{stale['token']}")
        if not self._create(marker, self._encode()):
            return False  # another job is taking this record over
        try:
            now = self.read()
            if now is None or now["token"] != stale["token"]:
                return False
            self.expires_at = time.time() + self.lease_s
            self._replace(self.path, self._encode())
            return True
        finally:
            self._remove(marker)

    def _confirm(self) -> StoreLock:
        held = self.read()
        if held is None or held["token"] != self.token:  # only on a filesystem without "xb"
            raise StoreLockedError(self._refusal(held or self._record()))
        self.held = True
        self._thread = threading.Thread(target=self._renew_loop, name="store-lock", daemon=True)
        self._thread.start()
        return self

    def _refusal(self, held: dict) -> str:
        return (
            f"store {self.url} is locked by another merv extract (host {held['host']}, "
            f"pid {held['pid']}, since {_iso(float(held['started_at']))}, lease until "
            f"{_iso(float(held['expires_at']))}): wait for it to finish; if that job is dead, "
            f"rerun with --break-lock"
        )

    def renew(self) -> bool:
        """Extend the lease; False (and ``lost`` set) when the lock is no longer ours."""
        if time.time() > self.expires_at:
            self.lost = f"its lease lapsed at {_iso(self.expires_at)} before it was renewed"
        else:
            held = self.read()
            if held is None or held["token"] != self.token:
                self.lost = "another job replaced or removed the lock file"
        if self.lost:
            log.error("lost the lock on %s: %s", self.url, self.lost)
            return False
        self.expires_at = time.time() + self.lease_s
        self._replace(self.path, self._encode())
        return True

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 3):
            try:
                if not self.renew():
                    return
            except Exception as err:  # a transient filesystem error: retry until the lease lapses
                log.warning("could not renew the lock on %s: %s", self.url, err)

    def release(self) -> None:
        """Stop renewing and remove the lock file if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.held and not self.lost:
            held = self.read()
            if held is not None and held["token"] == self.token:
                self._remove(self.path)
                self._remove_empty_root()
        self.held = False

    def _remove_empty_root(self) -> None:
        """A job that failed before creating its store leaves no empty folder behind."""
        try:
            if getattr(self, "_made_root", False) and not self.fs.ls(self.root, detail=False):
                self.fs.rmdir(self.root)
        except (OSError, NotImplementedError):
            pass  # object stores have no folders to remove

    def __enter__(self) -> StoreLock:
        self.acquire()
        go = os.environ.get(PAUSE_ENV)
        deadline = time.time() + 300
        while go and not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.05)
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.release()
        if self.lost and exc_type is None:
            raise StoreLockedError(
                f"store {self.url}: this job lost its lock while writing ({self.lost}); another "
                f"job may have written to the store too: rerun `merv extract` to check and resume"
            )
