"""What a user sees: on the console merv's own lines only; Ray's go to the log it names once."""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import cli_env


def test_local_job_prints_only_merv_lines(synthetic_corpus, tmp_path):
    folder, _ = synthetic_corpus
    store = tmp_path / "store"
    argv = [sys.executable, "-c", "from jobs.cli import main; main()", "extract", str(folder)]
    argv += ["--store", str(store), "--encoders", "dinov2-tiny", "--batch-size", "4"]
    done = subprocess.run(argv, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    # not a terminal: progress as whole lines, the last one at the end; nothing else
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("extract: 8/8 videos (100%), 0 failed, ")
    assert all(line.startswith("extract: ") for line in lines), lines
    (log,) = (store / "_jobs").glob("ray-*.log")
    assert done.stdout.count(f"Ray's own messages go to {log}") == 1
    assert "core_worker" in log.read_text()  # Ray's own line, kept out of the console
