"""Turn a source (local path, fsspec URL, WebDataset tar member) into a local file to decode.

Local files are decoded in place. Anything remote is copied to a private temporary file first,
under a byte cap, because decord and PyAV both want a seekable local file and a copy costs one
sequential read. Transient read errors (connection refused or reset, timeouts) are retried a
bounded number of times with backoff; permanent ones (404, no such key, permission) are not.
A remote copy has a time limit (``READ_TIMEOUT_S``, set per job), so a stalled server costs one
video, not the job. A local path is refused as ``not-a-file`` unless it is a regular file (a
FIFO would block the reader forever, ``/dev/zero`` never ends, ``/proc`` files lie about size),
and is opened non-blocking, so nothing swapped in after the check can block either.
Nothing here builds a path from a video id or a tar member name: the temporary file's name is
random and only keeps a sanitised extension (some demuxers look at it).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TypeVar

from pipeline import failures
from pipeline.failures import DecodeError, one_line

if TYPE_CHECKING:  # not at run time: pipeline.sources imports this module
    from pipeline.sources.item import TarMember

T = TypeVar("T")

MAX_FETCH_BYTES = 8 * 2**30  # a remote video bigger than this fails as too-large, not ENOSPC
RETRIES = 3
BACKOFF_S = 0.25  # 0.25 s, 0.5 s between the three tries: bounded, quick for a dead host
READ_TIMEOUT_S = 120.0  # per remote video copy, all tries together; the job sets its own
_COPY_CHUNK = 8 * 2**20
_VIRTUAL_ROOTS = ("/proc/", "/sys/")  # kernel views: not files, whatever stat says
_TRANSIENT_NAMES = ("Connect", "Timeout", "Temporar", "Throttl", "SlowDown", "ServerDisconnected")


def is_url(source: str) -> bool:
    return "://" in source and not source.startswith("file://")


def local_path(source: str) -> str:
    return source.removeprefix("file://")


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


def _transient_one(e: BaseException) -> bool:
    return isinstance(e, (ConnectionError, TimeoutError)) or any(
        k in type(e).__name__ for k in _TRANSIENT_NAMES
    )


def is_transient(err: BaseException) -> bool:
    """Network-ish errors worth another try. fsspec's HTTP layer reports a refused connection as
    FileNotFoundError, so the whole cause chain is inspected, not just the outer type."""
    return any(_transient_one(e) for e in _chain(err))


def classify_read_error(err: BaseException, what: str) -> DecodeError:
    if isinstance(err, DecodeError):
        return err
    detail = f"{what}: {type(err).__name__}: {one_line(err, 200)}"
    if is_transient(err):
        cause = [e for e in _chain(err) if _transient_one(e)][0]
        return DecodeError(
            failures.UNREACHABLE,
            f"{what}: {type(cause).__name__}: {one_line(cause, 200)} (after {RETRIES} tries)",
        )
    if isinstance(err, (FileNotFoundError, KeyError)):
        return DecodeError(failures.MISSING, detail)
    return DecodeError(failures.UNREADABLE, detail)


def with_retry(fn: Callable[[], T], tries: int = RETRIES, backoff: float = BACKOFF_S) -> T:
    """Call ``fn``; retry only transient errors, ``tries`` times in all, with growing pauses."""
    for attempt in range(tries):
        try:
            return fn()
        except Exception as err:  # noqa: BLE001 - re-raised unless transient
            if attempt == tries - 1 or not is_transient(err):
                raise
            time.sleep(backoff * 2**attempt)
    raise AssertionError("unreachable")


def not_a_file(path: str, st: os.stat_result | None = None) -> str | None:
    """Why the local ``path`` is not a regular file to read (None when it is one)."""
    try:
        st = st or os.stat(path)  # follows links: a link to /dev/zero is /dev/zero
    except OSError:
        return None  # missing or unreadable: the reader says which
    if stat.S_ISDIR(st.st_mode):
        return f"{path} is a directory"
    if not stat.S_ISREG(st.st_mode):
        kind = "a FIFO" if stat.S_ISFIFO(st.st_mode) else "a device, socket or special file"
        return f"{path} is {kind}"
    real = os.path.realpath(path)
    if real.startswith(_VIRTUAL_ROOTS):
        return f"{path} is a kernel file ({real})"
    return None


def check_local(path: str) -> int:
    """Size of a local regular file, or a classified DecodeError (missing, not a file, ...)."""
    if reason := not_a_file(path):  # before any open: opening a FIFO blocks
        raise DecodeError(failures.NOT_A_FILE, reason)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            st = os.fstat(fd)  # the file really opened: a swap after the check is caught here
            if reason := not_a_file(path, st):
                raise DecodeError(failures.NOT_A_FILE, reason)
            os.read(fd, 1)  # permission and I/O errors show here, not in a decoder
        finally:
            os.close(fd)
        return st.st_size
    except OSError as err:
        raise classify_read_error(err, path) from err


def with_time_limit(fn: Callable[[], T], seconds: float, what: str) -> T:
    """``fn()`` in a daemon thread; ``unreachable:`` when it runs past ``seconds`` (the thread
    is abandoned: a read stuck in the network cannot be interrupted from Python)."""
    if not seconds or seconds <= 0:
        return fn()
    box: dict[str, object] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as err:  # noqa: BLE001 - handed to the caller's thread
            box["error"] = err

    worker = threading.Thread(target=run, daemon=True, name="merv-read")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise DecodeError(failures.UNREACHABLE, f"{what}: read timed out after {seconds:g} s")
    if "error" in box:
        raise box["error"]  # type: ignore[misc]
    return box["value"]  # type: ignore[return-value]


def _suffix(name: str) -> str:
    ext = os.path.splitext(name.split("::")[0].split("?")[0])[1]
    return ext.lower() if re.fullmatch(r"\.[A-Za-z0-9]{1,10}", ext) else ".bin"


def _copy_member(member: TarMember, dst: str, storage_options: dict, max_bytes: int) -> int:
    """A WebDataset member: one ranged read of its shard, no tar scan."""
    import fsspec

    size = member.size
    if size > max_bytes:
        raise DecodeError(failures.TOO_LARGE, f"{size} bytes > cap {max_bytes}")
    with fsspec.open(member.shard, "rb", **storage_options) as f, open(dst, "wb") as out:
        f.seek(member.offset)
        remaining = size
        while remaining:
            chunk = f.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                raise DecodeError(
                    failures.CORRUPT,
                    f"tar member cut short: {size - remaining} of {size} bytes in {member.shard}",
                )
            out.write(chunk)
            remaining -= len(chunk)
    return size


def _copy(
    source: str, dst: str, storage_options: dict, member: TarMember | None, max_bytes: int
) -> int:
    import fsspec

    if member:
        return _copy_member(member, dst, storage_options, max_bytes)
    copied = 0
    if "::" in source and storage_options:  # chained URL: the options belong to the inner one
        inner = source.split("::", 1)[1]
        storage_options = {inner.split("://", 1)[0] if "://" in inner else "file": storage_options}
    with fsspec.open(source, "rb", **storage_options) as f, open(dst, "wb") as out:
        while chunk := f.read(_COPY_CHUNK):
            copied += len(chunk)
            if copied > max_bytes:
                raise DecodeError(failures.TOO_LARGE, f"more than {max_bytes} bytes")
            out.write(chunk)
    return copied


@contextlib.contextmanager
def open_local(
    source: str,
    storage_options: dict | None = None,
    member: TarMember | None = None,
    max_bytes: int = MAX_FETCH_BYTES,
) -> Iterator[tuple[str, int]]:
    """Yield ``(local path, size in bytes)`` for ``source``; remote copies are deleted after.

    ``member`` (from the WebDataset listing) reads a tar member by its byte range; without it a
    ``tar://member::shard`` source goes through fsspec's tar filesystem, which scans the shard's
    headers first.
    """
    if not is_url(source) and not member:
        path = local_path(source)
        yield path, check_local(path)
        return
    tmpdir = tempfile.mkdtemp(prefix="merv-fetch-")
    try:
        dst = os.path.join(tmpdir, "video" + _suffix(source))
        try:
            size = with_time_limit(
                lambda: with_retry(
                    lambda: _copy(source, dst, storage_options or {}, member, max_bytes)
                ),
                READ_TIMEOUT_S,
                source,
            )
        except Exception as err:  # noqa: BLE001 - classified into a failure reason
            raise classify_read_error(err, source) from err
        yield dst, size
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
