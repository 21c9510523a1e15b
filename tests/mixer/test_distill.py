"""`merv distill` on a synthetic store where one encoder carries the label: distillation
lowers the student-teacher distance, a student of the encoder the teacher trusts keeps its
accuracy (one of another encoder does not), the student serves with its teacher's head, and
a killed distillation resumes to the weights of an uninterrupted one."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file
from torch.nn import functional as F

from mixer import TrainConfig, load_model, train
from mixer.distill.compare import compare_to_teacher
from mixer.distill.student import student_config
from mixer.inmemory import load_features
from mixer.model import MervMixer, ModelSpec
from mixer.selection import select_rows
from tests.helpers import cli_env, quiet
from tests.mixer.conftest import separable, write_store

DISTILL = [sys.executable, "-c", "from jobs.cli import main; main()", "distill"]


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    feats, y = separable(64, {"a": 6, "b": 4, "c": 4}, informative="a", margin=2.0)
    store = str(root / "store.zarr")
    write_store(store, feats, [f"c{v}" for v in y], shard_size=16)
    out = root / "teacher"
    config = TrainConfig(store=store, d_model=8, epochs=6, batch_size=8, pool_grid=2,
                         loader_workers=0, out=str(out))  # fmt: skip
    result = train(config, log=quiet)
    assert result.val_acc[-1] == 1.0
    return store, out, result, root


def _held_out_cosine(student: MervMixer, config: TrainConfig) -> float:
    """Mean token cosine of ``student`` to its teacher on the run's validation rows, by hand."""
    data = select_rows(config, log=quiet)
    feats = load_features(config.store, pool_grid=2, log=quiet).features
    teacher = load_model(config.objective_options["teacher"]).eval()
    rows = torch.from_numpy(data.rows[data.val])
    with torch.no_grad():
        mine = student.fuse([feats[0][rows]])[0]
        theirs = teacher.fuse([f[rows] for f in feats])[0]
    return float(F.cosine_similarity(mine, theirs, dim=-1).mean())


def test_distillation_lowers_the_student_teacher_distance(teacher, tmp_path):
    store, path, _, _ = teacher
    config = student_config(str(path), ["a"], out=str(tmp_path / "s"), loader_workers=0,
                            epochs=10)  # fmt: skip
    torch.manual_seed(config.seed)  # the student's initial weights, as train() draws them
    data = select_rows(config.with_recipe(), log=quiet)
    untrained = MervMixer(ModelSpec.from_train_config(config.with_recipe(), data)).eval()
    result = train(config, log=quiet)
    trained = load_model(tmp_path / "s").eval()
    before, after = _held_out_cosine(untrained, config), _held_out_cosine(trained, config)
    assert after > 0.95 and before < 0.5, (before, after)
    assert result.train_loss[-1] < 0.2 * result.train_loss[0]
    scores = compare_to_teacher(tmp_path / "s")
    assert scores["cosine"] == pytest.approx(after, abs=1e-4)
    assert scores["rel_l2"] < 0.6 and scores["held_out"] and scores["rows"] == len(data.val)


def test_a_student_of_the_most_trusted_encoder_keeps_the_accuracy(teacher, tmp_path):
    store, path, result, _ = teacher
    trusted = max(result.mixer_weights, key=result.mixer_weights.get)
    assert trusted == "a"
    kept = {}
    for enc in ("a", "b"):
        cfg = student_config(str(path), [enc], out=str(tmp_path / enc), loader_workers=0,
                             epochs=10)  # fmt: skip
        train(cfg, log=quiet)
        scores = compare_to_teacher(tmp_path / enc)
        assert scores["teacher_metric"] == 1.0 and scores["metric_name"] == "accuracy"
        kept[enc] = scores["kept"]
    assert kept["a"] >= 0.9  # the label's encoder: the teacher's accuracy kept
    assert kept["b"] <= 0.75  # an encoder without it: about chance (0.5)


def test_the_student_serves_with_its_teachers_head(teacher, tmp_path):
    store, path, _, _ = teacher
    cfg = student_config(str(path), ["a"], adapter="temporal", out=str(tmp_path / "t"),
                         loader_workers=0, epochs=2, loss={"cosine_weight": 2.0})  # fmt: skip
    train(cfg, log=quiet)
    student, t = load_model(tmp_path / "t"), load_model(path)
    assert student.spec.objective == "probe" and student.spec.fusion == "temporal_adapter"
    assert student.spec.classes == t.spec.classes and student.spec.encoders == ["a"]
    for k, v in t.head.state_dict().items():
        assert torch.equal(student.head.state_dict()[k], v)
    saved = (tmp_path / "t" / "train_config.yaml").read_text()
    assert "cosine_weight: 2.0" in saved and "objective: distill" in saved
    feats = load_features(store, pool_grid=2, log=quiet).features
    with torch.no_grad():
        logits, weights = student([feats[0][:5]])
    assert logits.shape == (5, 2) and weights is None


def _distill(store, teacher, out, fault=None, *extra):
    argv = [*DISTILL, store, "--teacher", str(teacher), "--student-encoders", "a,b", "--out",
            str(out), "--epochs", "3", "--batch-size", "8", "--checkpoint-every", "4", *extra]  # fmt: skip
    env = cli_env(**({"MERV_FAULT": fault} if fault else {}))
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_a_killed_distillation_resumes_to_the_same_student(teacher, tmp_path):
    store, path, _, _ = teacher
    clean = _distill(store, path, tmp_path / "clean")
    assert clean.returncode == 0, clean.stderr
    assert "student a+b vs teacher a+b+c on 12 held-out videos" in clean.stdout
    killed = _distill(store, path, tmp_path / "run", "after_train_step:9")
    assert killed.returncode == -signal.SIGKILL
    resumed = _distill(store, path, tmp_path / "run", None, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert "resume: step-000000008" in resumed.stdout
    want = load_file(str(tmp_path / "clean" / "model.safetensors"))
    got = load_file(str(tmp_path / "run" / "model.safetensors"))
    assert want.keys() == got.keys() and all(torch.equal(want[k], got[k]) for k in want)
    scores = [
        json.loads((tmp_path / r / "distill_eval.json").read_text()) for r in ("clean", "run")
    ]
    assert scores[0] == scores[1] and scores[0]["encoders"] == ["a", "b"]
