"""`merv train --workers 2`: the training loop as a Ray Train TorchTrainer job (a local Ray,
two CPU workers, gloo) takes the steps of one process with the whole batch."""

from __future__ import annotations

import subprocess
import sys

from mixer.metrics import read_metrics
from tests.helpers import cli_env

TRAIN = [sys.executable, "-c", "from jobs.cli import main; main()", "train"]
RUN = ["--epochs", "2", "--batch-size", "8", "--d-model", "16", "--pool-grid", "2"]


def test_ray_train_workers_give_the_losses_of_one_process(tmp_path):
    from tests.mixer.conftest import separable, write_store

    feats, y = separable(80, {"a": 6, "b": 4}, informative="a")
    store = str(tmp_path / "store.zarr")
    write_store(store, feats, [f"c{v}" for v in y], shard_size=16)
    env = cli_env(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    runs = {}
    for name, extra in (("one", []), ("ray", ["--workers", "2"])):
        argv = [*TRAIN, store, *RUN, "--out", str(tmp_path / name), *extra]
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stderr[-3000:]
        runs[name] = (read_metrics(tmp_path / name / "metrics.jsonl"), done.stdout)
    (one, _), (ray_run, stdout) = runs["one"], runs["ray"]
    assert [m["step"] for m in ray_run] == [m["step"] for m in one] == list(range(1, 17))
    for a, b in zip(one, ray_run, strict=True):
        assert abs(a["loss"] - b["loss"]) <= 1e-5 and a["lr"] == b["lr"], a["step"]
    assert "trained on 64 videos, validated on 16" in stdout  # rank 0's result, on the driver
