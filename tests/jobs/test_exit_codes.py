"""Config numbers refused before anything starts, `--store` checked, one-line errors, and the
exit code of every outcome (jobs/exits.py)."""

from __future__ import annotations

import errno

import pytest

from jobs import exits
from jobs.cli import main
from jobs.config import ExtractConfig, failed_allowed
from jobs.store_target import check_store_target
from jobs.telemetry import Telemetry
from pipeline.config import ConfigError
from pipeline.store import StoreError

BAD_NUMBERS = [
    ("shard_size", 0, ">= 1"),
    ("batch_size", 0, ">= 1"),
    ("encoder_actors", 0, ">= 1"),
    ("encoder_cpus", 0, "> 0"),
    ("encoder_threads", -1, ">= 0"),
    ("encoder_gpus", -0.5, "unset (null) or >= 0"),
    ("decode_workers", -1, ">= 0"),
    ("decode_memory_mb", 0, ">= 1"),
    ("grid", 0, "1..16"),
    ("grid", 17, "1..16"),
    ("time_steps", 0, "1..32"),
    ("time_steps", 33, "1..32"),
    ("max_failed", "1.5", "fraction 0..1"),
    ("max_failed", "-1", "count >= 0"),
]


@pytest.fixture
def no_ray(monkeypatch):
    import ray

    def refuse(*args, **kwargs):
        raise AssertionError("Ray was started before the config was refused")

    monkeypatch.setattr(ray, "init", refuse)


def _exit(argv) -> int:
    with pytest.raises(SystemExit) as info:
        main(argv)
    return info.value.code


@pytest.mark.parametrize(("field", "value", "allowed"), BAD_NUMBERS)
def test_a_bad_number_is_refused_before_anything_starts(
    field, value, allowed, tmp_path, synthetic_corpus, capsys, no_ray
):
    folder, _ = synthetic_corpus
    store, job = tmp_path / "s.zarr", tmp_path / "job.yaml"
    job.write_text(f"extract:\n  encoders: dinov2-tiny\n  {field}: {value!r}\n")
    argv = ["extract", str(folder), "--store", str(store), "--config", str(job)]
    assert _exit(argv) == exits.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"merv: error: {field}: ")
    assert allowed in err and not store.exists()


def test_a_bad_flag_is_refused_like_a_bad_file_value(tmp_path, synthetic_corpus, capsys, no_ray):
    folder, _ = synthetic_corpus
    store = tmp_path / "s.zarr"
    assert _exit(["extract", str(folder), "--store", str(store), "--batch-size", "0"]) == 2
    assert "batch_size: 0 is not allowed; it must be >= 1" in capsys.readouterr().err
    assert not store.exists()


def test_the_bounds_themselves_are_allowed():
    ExtractConfig(shard_size=1, batch_size=1, encoder_actors=1, encoder_cpus=0.25)
    ExtractConfig(encoder_threads=0, encoder_gpus=0, decode_workers=0, decode_memory_mb=1)
    ExtractConfig(encoder_gpus=None, grid=1, time_steps=1, max_failed="0")
    ExtractConfig(grid=16, time_steps=32, max_failed="1.0")


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_store_path_that_is_not_a_store_ends_in_one_line(
    kind, tmp_path, synthetic_corpus, capsys, no_ray
):
    folder, _ = synthetic_corpus
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("notes")
    else:
        target.mkdir()
        (target / "notes.txt").write_text("notes")
    argv = ["extract", str(folder), "--store", str(target), "--encoders", "dinov2-tiny"]
    assert _exit(argv) == exits.USAGE
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--store {target} is a {kind}" in err
    assert target.read_text() if kind == "file" else sorted(p.name for p in target.iterdir())


def test_a_new_path_an_empty_folder_or_a_lock_only_folder_is_accepted(tmp_path):
    check_store_target(str(tmp_path / "new"))
    check_store_target(str(tmp_path))
    (tmp_path / "_lock.json").write_text("{}")
    check_store_target(str(tmp_path))
    (tmp_path / "zarr.json").write_text("{}")  # a store: opening checks it further
    (tmp_path / "other").write_text("")
    check_store_target(str(tmp_path))


def test_max_failed_is_a_count_or_a_fraction():
    assert failed_allowed("", 10) == float("inf")
    assert failed_allowed("3", 10) == 3
    assert failed_allowed("0.25", 8) == 2.0 and failed_allowed("50%", 8) == 4.0
    with pytest.raises(ConfigError, match="max_failed"):
        failed_allowed("some", 10)


def _finish_with(monkeypatch, ok: int, failed: int):
    def fake_run(cfg, **_kwargs):
        return Telemetry(
            store=cfg.store,
            videos=ok + failed,
            planned=0,
            ok=ok,
            failed=failed,
            processed=ok + failed,
        )

    monkeypatch.setattr("jobs.extract.run_extract", fake_run)


@pytest.mark.parametrize(
    ("max_failed", "failed", "code"),
    [(None, 4, 0), ("2", 2, 0), ("2", 3, 3), ("0.5", 2, 0), ("0.5", 3, 3), ("0", 0, 0)],
)
def test_failed_videos_fail_the_job_only_past_max_failed(
    max_failed, failed, code, monkeypatch, tmp_path, capsys
):
    _finish_with(monkeypatch, ok=4 - min(failed, 4), failed=failed)
    argv = ["extract", "in", "--store", str(tmp_path / "s")]
    assert _exit(argv + (["--max-failed", max_failed] if max_failed else [])) == code
    err = capsys.readouterr().err
    assert (err.count("\n") == 1 and "--max-failed" in err) if code else err == ""


@pytest.mark.parametrize(
    ("error", "code", "says"),
    [
        (StoreError("store s: has grid=8, this job asks for 4"), 4, "grid=8"),
        (OSError(errno.EIO, "Input/output error", "/s/x"), 4, "I/O error: Input/output error"),
        (OSError(errno.ENOSPC, "No space left on device"), 4, "disk full"),
        (FileNotFoundError(errno.ENOENT, "No such file", "in"), 2, "No such file"),
        (RuntimeError("shards [3] did not receive every row"), 4, "shards [3]"),
        (TypeError("bad operand"), 1, "internal error: TypeError: bad operand"),
    ],
)
def test_every_error_is_one_line_with_its_exit_code(
    error, code, says, monkeypatch, tmp_path, capsys
):
    def fail(cfg, **_kwargs):
        raise error

    monkeypatch.setattr("jobs.extract.run_extract", fail)
    store = str(tmp_path / "s")
    assert _exit(["extract", "in", "--store", store]) == code
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("merv: error: ") and says in err
    if "disk full" in says:
        assert store in err and "rerun" in err
    assert _exit(["--debug", "extract", "in", "--store", store]) == code
    assert "Traceback (most recent call last)" in capsys.readouterr().err
