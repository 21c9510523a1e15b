"""`merv train` under torchrun: two CPU processes (gloo, on loopback), each with half of every
global batch, take the steps of one process with the whole batch."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mixer.metrics import read_metrics
from tests.helpers import cli_env
from tests.jobs.ray_head import free_port
from tests.mixer.conftest import write_store

BIN = Path(sys.executable).parent
RUN = ["--epochs", "2", "--batch-size", "8", "--d-model", "16", "--pool-grid", "2"]


def test_two_processes_give_the_losses_of_one(synth, tmp_path):
    feats, y = synth.separable(80, {"a": 6, "b": 4}, informative="a")
    store = tmp_path / "store.zarr"
    write_store(str(store), feats, [f"c{v}" for v in y], shard_size=16)
    env = cli_env(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    train = ["train", str(store), *RUN]
    one = subprocess.run(
        [str(BIN / "merv"), *train, "--out", str(tmp_path / "one")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert one.returncode == 0, one.stderr
    launch = [str(BIN / "torchrun"), "--nnodes=1", "--nproc-per-node=2"]
    launch += ["--master-addr=127.0.0.1", f"--master-port={free_port()}"]
    two = subprocess.run(
        [*launch, str(BIN / "merv"), *train, "--out", str(tmp_path / "two")],
        env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert two.returncode == 0, two.stderr[-3000:]
    a, b = (
        read_metrics(tmp_path / "one" / "metrics.jsonl"),
        read_metrics(tmp_path / "two" / "metrics.jsonl"),
    )
    # 64 training rows, batches of 8: 8 steps per epoch
    assert [m["step"] for m in a] == [m["step"] for m in b] == list(range(1, 17))
    for x, z in zip(a, b, strict=True):
        assert abs(x["loss"] - z["loss"]) <= 1e-5, (x["step"], x["loss"], z["loss"])
        assert x["lr"] == z["lr"]
    assert two.stdout.count("epoch 1/2 ") == 1  # rank 0 alone speaks
