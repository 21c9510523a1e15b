"""Cluster mode against a real head (`ray start --head`, token auth on, loopback only): attach
with `--address`, submit with `ray job submit`, a wrong or missing token, an unreachable head,
inputs and a store that only the driver can read. Every finished store must equal the
in-process one bitwise."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from tests.helpers import store_files
from tests.jobs.conftest import CLUSTER_JOB
from tests.jobs.ray_head import LOOPBACK, free_port, ray_cli, start_head

MERV = [sys.executable, "-c", "from jobs.cli import main; main()"]
JOB_FLAGS = [f"--{k.replace('_', '-')}={v}" for k, v in CLUSTER_JOB.items()]
RAY_CPP_LINE = r"^\[\d{4}-\d\d-\d\d [\d:,]+ [DIWEF] \d+ \d+\]"  # Ray's C++ log line prefix


@pytest.fixture(scope="module")
def head():
    # a short path: Ray's unix sockets live under the temp dir (107-byte limit)
    folder = Path(tempfile.mkdtemp(prefix="merv-head-"))
    head = start_head(folder)
    yield head
    head.stop()


def extract(head, corpus, store, *extra, env=None, timeout=300):
    argv = [*MERV, "extract", str(corpus), "--store", str(store), "--encoders", "tiny"]
    argv += [*JOB_FLAGS, "--address", head.address, "--no-progress", *extra]
    return subprocess.run(
        argv, env=env or head.env(), capture_output=True, text=True, timeout=timeout
    )


def same_store(a, b) -> bool:
    return store_files(a, skip=("_jobs",)) == store_files(b, skip=("_jobs",))


def test_head_listens_on_loopback_only(head):
    import psutil

    listening = [
        c.laddr.ip
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and c.pid in head.pids()
    ]
    assert listening, "found none of the head's listening sockets"
    assert {ip.removeprefix("::ffff:") for ip in listening} == {LOOPBACK}


def test_extract_with_address_equals_in_process(head, cluster_corpus, in_process_store, tmp_path):
    """As a user on the head machine runs it: no Ray auth variable set, the token where
    `ray start --head` leaves it (~/.ray/auth_token)."""
    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text(head.token_file.read_text())
    env = head.env(RAY_AUTH_MODE=None, RAY_AUTH_TOKEN_PATH=None, HOME=str(home))
    store = tmp_path / "store"
    done = extract(head, cluster_corpus, store, env=env)
    assert done.returncode == 0, done.stderr
    assert same_store(store, in_process_store)
    # the console has merv's lines only; Ray's own went to the log file named once
    assert done.stderr == ""
    logs = list((store / "_jobs").glob("ray-*.log"))
    assert len(logs) == 1 and done.stdout.count(str(logs[0])) == 1
    assert "core_worker" in logs[0].read_text()  # what used to land in the progress bar


def test_wrong_token_is_one_line_in_seconds(head, cluster_corpus, tmp_path):
    env = head.env(RAY_AUTH_TOKEN="0" * 64, RAY_AUTH_TOKEN_PATH=None)
    done = extract(head, cluster_corpus, tmp_path / "s", env=env, timeout=10)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(
        f"merv: error: the Ray cluster at {head.address} refused the auth token from "
        "RAY_AUTH_TOKEN (wrong token"
    )
    assert not (tmp_path / "s" / "zarr.json").exists()


def test_missing_token_says_where_to_put_it(head, cluster_corpus, tmp_path):
    env = head.env(RAY_AUTH_TOKEN_PATH=None, RAY_AUTH_MODE=None, HOME=str(tmp_path))
    done = extract(head, cluster_corpus, tmp_path / "s", env=env, timeout=10)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "requires an auth token and none was found" in done.stderr
    assert "RAY_AUTH_TOKEN_PATH" in done.stderr


def test_unreachable_head_is_one_line(head, cluster_corpus, tmp_path):
    class Nowhere:  # a free port: nothing listens there
        address = f"{LOOPBACK}:{free_port()}"

    done = extract(Nowhere, cluster_corpus, tmp_path / "s", env=head.env(), timeout=10)
    assert done.returncode == 4
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"merv: error: no Ray head answers at {Nowhere.address}")


def test_ray_job_submit(head, cluster_corpus, in_process_store, tmp_path):
    store = tmp_path / "store"
    entrypoint = ["merv", "extract", str(cluster_corpus), "--store", str(store)]
    entrypoint += ["--encoders", "tiny", *JOB_FLAGS, "--address", "auto"]
    job = ["--address", head.dashboard]
    submit = [ray_cli(), "job", "submit", *job, "--submission-id", "merv-test", "--", *entrypoint]
    done = subprocess.run(submit, env=head.env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    logs = subprocess.run(
        [ray_cli(), "job", "logs", *job, "merv-test"],
        env=head.env(),
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    assert "extract: 12/12 videos (100%), 0 failed" in logs  # progress, as lines
    assert "done: 12 ok, 0 failed of 12 processed" in logs  # the summary
    assert "RayDeprecationWarning" not in logs
    import re

    assert not re.search(RAY_CPP_LINE, logs, re.MULTILINE)
    assert same_store(store, in_process_store)


def private_mount(folder: Path, then: str) -> list[str]:
    """argv: in a mount namespace of its own, a tmpfs on ``folder`` (seen by this process
    only, not by the head's workers), then the shell command ``then``."""
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c",
            f"mkdir -p {folder} && mount -t tmpfs merv-private {folder} && {then}"]  # fmt: skip


def test_input_only_the_driver_sees_is_refused(head, cluster_corpus, tmp_path):
    private = tmp_path / "private"
    argv = [*MERV, "extract", str(private), "--store", str(tmp_path / "store"), "--encoders"]
    argv += ["tiny", "--address", head.address, "--no-progress"]
    command = f"cp {cluster_corpus}/*.mp4 {private}/ && exec {subprocess.list2cmdline(argv)}"
    done = subprocess.run(
        private_mount(private, command), env=head.env(), capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"merv: error: input {private}/")
    assert "cannot be read from Ray node 127.0.0.1/" in done.stderr
    assert "FileNotFoundError" in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "store" / "zarr.json").exists()  # refused before the store was made


def test_store_only_the_driver_sees_works_with_a_warning(
    head, cluster_corpus, in_process_store, tmp_path
):
    """The workers cannot even see the store: the driver is its one writer."""
    private, copy = tmp_path / "private", tmp_path / "copy"
    argv = [*MERV, "extract", str(cluster_corpus), "--store", str(private / "store")]
    argv += ["--encoders", "tiny", *JOB_FLAGS, "--address", head.address, "--no-progress"]
    command = f"{subprocess.list2cmdline(argv)}; rc=$?; cp -a {private}/store {copy}; exit $rc"
    done = subprocess.run(
        private_mount(private, command), env=head.env(), capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith(f"merv: warning: the store {private / 'store'} is not visible")
    assert same_store(copy, in_process_store)


@pytest.fixture(scope="module")
def grid_store(tmp_path_factory):
    from tests.mixer.conftest import separable, write_store

    feats, y = separable(24, {"a": 6, "b": 4}, informative="a", margin=2.0)
    url = str(tmp_path_factory.mktemp("grid") / "store.zarr")
    write_store(url, feats, [f"c{v}" for v in y], shard_size=8)
    return url


def ablate(head, store, out, tmp_path, private=None, then: str = ""):
    """`merv ablate` of a 3-variant grid on the head, in a private mount on ``private`` if given
    (``then``: shell commands run in it first)."""
    import yaml

    grid = {"ablate": {"store": str(store), "out": str(out), "encoders": ["all", "singles"],
                       "pool_grid": [1],
                       "train": {"d_model": 8, "epochs": 2, "batch_size": 8,
                                 "loader_workers": 0, "fusion_options": {}}}}  # fmt: skip
    (tmp_path / "grid.yaml").write_text(yaml.safe_dump(grid))
    argv = [*MERV, "ablate", "--config", str(tmp_path / "grid.yaml"), "--address", head.address]
    if private is None:
        return subprocess.run(argv, env=head.env(), capture_output=True, text=True, timeout=300)
    command = f"{then} && exec {subprocess.list2cmdline(argv)}"
    return subprocess.run(private_mount(private, command), env=head.env(), capture_output=True,
                          text=True, timeout=120)  # fmt: skip


def test_ablate_on_the_cluster(head, grid_store, tmp_path):
    done = ablate(head, grid_store, tmp_path / "out", tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "3 variants x 1 seed(s) = 3 runs; 0 done before, 3 to train" in done.stdout
    assert (tmp_path / "out" / "report.html").exists()
    assert len(list((tmp_path / "out" / "variants").glob("*/results.json"))) == 3


def test_ablate_output_only_the_driver_sees_is_refused(head, grid_store, tmp_path):
    private = tmp_path / "private"
    done = ablate(head, grid_store, private / "out", tmp_path, private, then="true")
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"merv: error: the output folder {private / 'out'} is not the "
                                  "driver's on Ray node 127.0.0.1/")  # fmt: skip
    assert "FileNotFoundError" in done.stderr and done.stderr.count("\n") == 1
    assert not (private / "out").exists()  # the node's side: nothing written


def test_ablate_store_only_the_driver_sees_is_refused(head, grid_store, tmp_path):
    private = tmp_path / "private"
    then = f"cp -a {grid_store} {private}/store.zarr"
    done = ablate(head, private / "store.zarr", tmp_path / "out", tmp_path, private, then=then)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith(f"merv: error: the store {private / 'store.zarr'} cannot be "
                                  "opened from Ray node 127.0.0.1/")  # fmt: skip
    assert done.stderr.count("\n") == 1
    assert not list((tmp_path / "out").glob("variants/*"))  # refused before anything trained
