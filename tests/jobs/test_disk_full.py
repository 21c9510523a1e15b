"""A disk that fills mid-job: one line naming the store, exit code 4; after space is freed, the
rerun's store equals a clean run's, bitwise."""

from __future__ import annotations

import os
import subprocess

import pytest

from jobs.cli import main
from tests.helpers import store_files


def _sh(*cmd: str) -> str:
    """Run ``cmd``; "" when it worked, else why not."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return str(err)
    return "" if done.returncode == 0 else (done.stderr.strip() or f"exit {done.returncode}")


@pytest.fixture
def small_disk(tmp_path):
    """A 600 KiB tmpfs: the store of 8 tiny clips (~1.1 MB) overflows it partway."""
    disk = tmp_path / "disk"
    disk.mkdir()
    why = _sh("mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(disk))
    if why:
        why = f"cannot mount a small tmpfs for the disk-full test (needs root): {why}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"{why}; CI runs as root and must run it", pytrace=False)
        pytest.skip(why)
    try:
        yield disk
    finally:
        if _sh("umount", str(disk)):
            _sh("umount", "-l", str(disk))


def _exit(argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


def test_a_full_disk_ends_in_one_line_and_a_rerun_equals_a_clean_run(
    small_disk, tmp_path, synthetic_corpus, ray_session, capsys
):
    folder, _ = synthetic_corpus
    job = [str(folder), "--encoders", "dinov2-tiny", "--shard-size", "2", "--no-progress"]
    job = ["extract", *job, "--address", ray_session, "--store"]
    clean, store = tmp_path / "clean.zarr", small_disk / "s.zarr"
    assert _exit([*job, str(clean)]) == 0
    capsys.readouterr()

    assert _exit([*job, str(store)]) == 4
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("merv: error: disk full")
    assert str(store) in err and "rerun" in err

    assert not _sh("mount", "-o", "remount,size=8m", str(small_disk))
    assert _exit([*job, str(store)]) == 0
    assert store_files(store, skip=("_jobs",)) == store_files(clean, skip=("_jobs",))
