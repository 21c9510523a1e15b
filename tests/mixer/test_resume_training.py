"""Kill `merv train` mid-epoch with SIGKILL, rerun it with --resume: every later step's loss,
learning rate, gradient norm and mixer weights, and the final weights, equal an uninterrupted
run bitwise (CPU)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from safetensors.torch import load_file

from tests.helpers import cli_env
from tests.mixer.conftest import write_store

TRAIN = [sys.executable, "-c", "from jobs.cli import main; main()", "train"]


def run_train(store, out, *extra, fault: str | None = None):
    argv = [*TRAIN, str(store), "--out", str(out), "--epochs", "3", "--batch-size", "8"]
    argv += ["--d-model", "16", "--pool-grid", "2", "--checkpoint-every", "4", *extra]
    env = cli_env(**({"MERV_FAULT": fault} if fault else {}))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def steps(out) -> list[dict]:
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "data_wait_s"} for x in lines]


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(synth, tmp_path):
    feats, y = synth.separable(96, {"a": 6, "b": 4}, informative="a")
    store = tmp_path / "store.zarr"
    write_store(str(store), feats, [f"c{v}" for v in y], shard_size=16)
    clean = run_train(store, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    # 76 training rows (a quarter of each class to validation) in batches of 8: 10 steps per
    # epoch; killed after step 14 (epoch 2), two steps after the checkpoint of step 12
    killed = run_train(store, tmp_path / "run", fault="after_train_step:14")
    assert killed.returncode == -signal.SIGKILL
    assert [p.name for p in (tmp_path / "run" / "checkpoints").iterdir()] == [
        "step-000000008",
        "step-000000012",
    ]
    resumed = run_train(store, tmp_path / "run", "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resume: step-000000012, epoch 2 batch 2" in resumed.stdout
    assert steps(tmp_path / "run") == steps(tmp_path / "clean")
    assert len(steps(tmp_path / "clean")) == 30
    want = load_file(str(tmp_path / "clean" / "model.safetensors"))
    got = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert want.keys() == got.keys() and all((want[k] == got[k]).all() for k in want)
    results = [json.loads((tmp_path / r / "results.json").read_text()) for r in ("clean", "run")]
    for key in ("train_loss", "train_acc", "val_acc", "mixer_weights"):
        assert results[0][key] == results[1][key], key
