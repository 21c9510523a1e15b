"""One writer per store, through the real CLI: a second `merv extract` on a store that another
one is writing is refused at once, and the store ends as if the two had run one after another.

Job A waits after taking the lock (``MERV_LOCK_PAUSE``: until the test creates a file) so the
test runs job B while A certainly holds the lock: a handshake, not a race against a timer.
"""

import subprocess
import time
from pathlib import Path

from pipeline.store.lock import LOCK_FILE, PAUSE_ENV
from tests.helpers import cli_env, cli_extract_argv, store_files

REPO = Path(__file__).resolve().parents[2]


def _cmd(corpus, store, address, *extra):
    return cli_extract_argv(corpus, store, address, "dinov2-tiny", *extra)


def _env(pause=None):
    return cli_env(**{PAUSE_ENV: str(pause)}) if pause else cli_env()


def _run(corpus, store, address, *extra):
    cmd = _cmd(corpus, store, address, *extra)
    return subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=300)


def _split_corpus(tmp_path, synthetic_corpus):
    """Two input folders with different videos (links to the session's clips)."""
    clips = sorted(synthetic_corpus[0].glob("*.mp4"))
    folders = tmp_path / "a", tmp_path / "b"
    for folder, part in zip(folders, (clips[:4], clips[4:7]), strict=True):
        folder.mkdir()
        for clip in part:
            (folder / clip.name).symlink_to(clip)
    return folders


def _wait_for(path: Path, proc: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_concurrent_extract_is_refused_and_store_equals_sequential_runs(
    tmp_path, synthetic_corpus, ray_session
):
    input_a, input_b = _split_corpus(tmp_path, synthetic_corpus)
    store, go = tmp_path / "store.zarr", tmp_path / "go"
    job_a = subprocess.Popen(
        _cmd(input_a, store, ray_session),
        cwd=REPO,
        env=_env(pause=go),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_for(store / LOCK_FILE, job_a)
        refused = _run(input_b, store, ray_session)
    finally:
        go.touch()
        out_a, err_a = job_a.communicate(timeout=300)
    assert job_a.returncode == 0, err_a[-2000:]
    assert refused.returncode != 0
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1, refused.stderr[-2000:]
    assert (
        lines[0].startswith("merv: error: store ") and "locked by another merv extract" in lines[0]
    )
    assert f"pid {job_a.pid}" in lines[0] and "since " in lines[0] and "--break-lock" in lines[0]
    assert not (store / LOCK_FILE).exists()  # A released it
    again = _run(input_b, store, ray_session)
    assert again.returncode == 0, again.stderr[-2000:]

    sequential = tmp_path / "sequential.zarr"
    for folder in (input_a, input_b):
        result = _run(folder, sequential, ray_session)
        assert result.returncode == 0, result.stderr[-2000:]
    got = store_files(store, skip=("_jobs", LOCK_FILE))
    want = store_files(sequential, skip=("_jobs", LOCK_FILE))
    assert sorted(got) == sorted(want)
    assert got == want


def test_break_lock_flag_takes_a_live_looking_lock(tmp_path, synthetic_corpus, ray_session):
    input_a, _ = _split_corpus(tmp_path, synthetic_corpus)
    store = tmp_path / "store.zarr"
    store.mkdir()
    record = '{"host": "gone-host", "pid": 1, "token": "t", "started_at": 0, "expires_at": 4e9}'
    (store / LOCK_FILE).write_text(record)
    refused = _run(input_a, store, ray_session)
    assert refused.returncode != 0 and "host gone-host, pid 1" in refused.stderr
    forced = _run(input_a, store, ray_session, "--break-lock")
    assert forced.returncode == 0, forced.stderr[-2000:]
    assert not (store / LOCK_FILE).exists()
    assert "break_lock: true" not in (store / "_jobs" / "extract.yaml").read_text()
