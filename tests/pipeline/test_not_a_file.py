"""Inputs that are not regular files, the store never listed as input, per-video faults, the
poison-pill bookkeeping and the remote read time limit: each bounded, so a hang fails, not
blocks (every call that could block runs in a thread joined with a timeout)."""

import json
import os
import subprocess
import sys
import threading
import time

import pyarrow as pa
import pytest

from pipeline import failures
from pipeline.failures import DecodeError, reason_class
from pipeline.fetch import check_local, with_time_limit
from pipeline.sources import list_videos

BOUND_S = 20


def _bounded(fn, *args, **kwargs):
    """``fn(*args)`` in a thread; fails (never hangs) when it runs past BOUND_S."""
    box = {}

    def run():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as err:  # noqa: BLE001 - re-raised below
            box["error"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(BOUND_S)
    assert not t.is_alive(), f"{fn.__name__}{args} blocked for {BOUND_S} s"
    if "error" in box:
        raise box["error"]
    return box["value"]


@pytest.fixture
def odd_folder(tmp_path):
    """One real-looking file and every kind of non-file named like a video."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ok.mp4").write_bytes(b"\0" * 64)
    os.mkfifo(folder / "fifo.mp4")
    (folder / "zero.mp4").symlink_to("/dev/zero")
    (folder / "x.mp4").mkdir()
    return folder


@pytest.mark.parametrize("name", ["fifo.mp4", "zero.mp4", "x.mp4"])
def test_check_local_refuses_non_files_before_reading(odd_folder, name):
    with pytest.raises(DecodeError) as err:
        _bounded(check_local, str(odd_folder / name))
    assert err.value.kind == failures.NOT_A_FILE


@pytest.mark.parametrize("path", ["/dev/zero", "/proc/self/status"])
def test_check_local_refuses_devices_and_kernel_files(path):
    with pytest.raises(DecodeError) as err:
        _bounded(check_local, path)
    assert err.value.kind == failures.NOT_A_FILE


def test_regular_file_passes(odd_folder):
    assert _bounded(check_local, str(odd_folder / "ok.mp4")) == 64


def test_folder_listing_fails_non_files_as_rows(odd_folder):
    items = {i.video_id: i for i in _bounded(list_videos, str(odd_folder))}
    assert sorted(items) == ["fifo", "ok", "x", "zero"]
    assert items["ok"].error is None
    for vid in ("fifo", "x", "zero"):
        assert reason_class(items[vid].error) == failures.NOT_A_FILE, items[vid].error


def test_manifest_naming_a_device_fails_at_decode(tmp_path, odd_folder):
    from pipeline.decode import decode_video

    manifest = tmp_path / "m.csv"
    manifest.write_text(f"video_id,path\nz,/dev/zero\nf,{odd_folder / 'fifo.mp4'}\n")
    items = _bounded(list_videos, str(manifest))
    assert [i.video_id for i in items] == ["f", "z"]
    for item in items:
        with pytest.raises(DecodeError) as err:
            _bounded(decode_video, item.source, 32)
        assert err.value.kind == failures.NOT_A_FILE


def _fake_store(folder):
    folder.mkdir(parents=True)
    attrs = {"attributes": {"merv_store_version": 1}}
    (folder / "zarr.json").write_text(json.dumps(attrs))
    (folder / "data.mp4").write_bytes(b"x")  # named like a video: still never listed
    (folder / "c").mkdir()
    (folder / "c" / "0").write_bytes(b"x")


def test_store_folders_are_never_listed(tmp_path):
    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "a.mp4").write_bytes(b"x")
    (folder / "notes.txt").write_text("x")
    _fake_store(folder / "other.zarr")  # any merv store
    excluded = folder / "mine.zarr"  # the job's own store, even before it has a zarr.json
    (excluded / "part").mkdir(parents=True)
    (excluded / "part" / "b.mp4").write_bytes(b"x")
    ids = {i.video_id for i in list_videos(str(folder), all_files=True, exclude=[excluded])}
    assert ids == {"sub/a", "notes"}
    glob_ids = {i.video_id for i in list_videos(f"{folder}/**/*", exclude=[str(excluded)])}
    assert glob_ids == {"a"}  # ids relative to the common folder of the matches


def test_keyed_fault_kills_only_its_video():
    code = (
        "from pipeline.faults import fault_point\n"
        "fault_point('decode_video', key='good')\n"
        "print('alive', flush=True)\n"
        "fault_point('decode_video', key='bad/1')\n"
        "print('survived')\n"
    )
    env = {**os.environ, "MERV_FAULT": "decode_video:bad/1"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.returncode == -9 and out.stdout == "alive\n", out


def test_remote_read_time_limit():
    began = time.perf_counter()
    with pytest.raises(DecodeError) as err:
        with_time_limit(lambda: time.sleep(10), 0.2, "s3://b/v.mp4")
    assert time.perf_counter() - began < 5
    assert err.value.kind == failures.UNREACHABLE and "timed out" in str(err.value)
    assert with_time_limit(lambda: 3, 1.0, "x") == 3


def _todo(n):
    rows = list(range(n))
    return pa.table({"row": rows, "video_id": [f"v{r}" for r in rows], "extra": ["{}"] * n})


@pytest.mark.parametrize("retries", [0, 1, 2, 5])
def test_poison_rows_are_retried_a_bounded_number_of_times(retries):
    from jobs.poison import decode_with_retries

    calls, recorded = [], []

    def run_pass(rows, per_block, task_retries):  # row 2 kills every worker it meets
        calls.append((rows.column("row").to_pylist(), per_block, task_retries))
        return {r for r in rows.column("row").to_pylist() if r not in (1, 2)} | (
            {1} if per_block == 1 else set()  # row 1 only shared a block with row 2
        )

    crashed = decode_with_retries(_todo(4), retries, run_pass, recorded.append)
    assert calls[0] == ([0, 1, 2, 3], 0, 0)
    if retries:
        assert calls[1:] == [([1, 2], 1, retries - 1)]  # one video per block, bounded retries
        assert [r["row"] for r in recorded] == [2]
    else:
        assert len(calls) == 1 and [r["row"] for r in recorded] == [1, 2]
    assert crashed == len(recorded)
    for row in recorded:
        assert reason_class(row["error"]) == failures.WORKER_CRASH
        assert f"{1 + retries} attempts" in row["error"] and row["status"] == "failed"


def test_decode_task_options_bound_retries(monkeypatch):
    from jobs.poison import decode_task_options

    monkeypatch.delenv("MERV_FAULT", raising=False)
    assert decode_task_options(2) == {"max_retries": 2}
    monkeypatch.setenv("MERV_FAULT", "decode_video:v1")
    assert decode_task_options(0)["runtime_env"] == {"env_vars": {"MERV_FAULT": "decode_video:v1"}}
