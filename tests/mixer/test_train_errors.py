"""Bad input to `merv train` ends in one line that names the fix (exit code 2), never a
traceback: an encoder the store lacks, videos without a label, a store still being written,
and on --resume a checkpoint of another model spec or of features that changed since."""

from __future__ import annotations

import pytest

from jobs.cli import main
from pipeline.store.lock import StoreLock
from tests.mixer.conftest import write_store

RUN = ["--d-model", "8", "--epochs", "1", "--batch-size", "8", "--pool-grid", "1"]


@pytest.fixture
def store(synth, tmp_path):
    feats, y = synth.separable(32, {"a": 4, "b": 3}, informative="a")
    url = str(tmp_path / "store.zarr")
    write_store(url, feats, [f"c{v}" for v in y], shard_size=16)
    return url


def one_line_error(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as stop:
        main(["train", *argv])
    err = capsys.readouterr().err
    assert stop.value.code == 2, err
    assert err.count("\n") == 1 and err.startswith("merv: error: "), err
    return err


def test_an_encoder_the_store_lacks(store, tmp_path, capsys):
    err = one_line_error(capsys, store, "--encoders", "a,zzz", *RUN)
    assert "encoder(s) ['zzz'] not in store" in err and "pass --encoders with some" in err


def test_videos_without_a_label(store, tmp_path, capsys):
    labels = tmp_path / "labels.csv"
    labels.write_text("video_id,label\n" + "".join(f"vid{i:04d},x\n" for i in range(30)))
    err = one_line_error(capsys, store, "--labels", str(labels), *RUN)
    assert "2 of 32 ok video(s) have no label in labels file" in err
    assert "'vid0030', 'vid0031'; add a label for each of them" in err


def test_a_store_still_being_written(store, capsys):
    with StoreLock(store):
        err = one_line_error(capsys, store, *RUN)
    assert f"store {store} is still being written by merv extract" in err
    assert "wait until it finishes" in err


def trained(store: str, out: str, capsys) -> str:
    """``out`` holding the checkpoints of a finished run."""
    with pytest.raises(SystemExit) as done:
        main(["train", store, "--out", out, *RUN])
    assert done.value.code == 0
    capsys.readouterr()
    return out


def test_resume_with_another_model_spec(store, tmp_path, capsys):
    out = trained(store, str(tmp_path / "run"), capsys)
    err = one_line_error(capsys, store, "--out", out, "--resume", *RUN[2:], "--d-model", "16")
    assert "was trained with another model spec (differs in ['d_model'])" in err


def test_resume_after_the_features_changed(store, tmp_path, capsys):
    import zarr

    out = trained(store, str(tmp_path / "run"), capsys)
    zarr.open_group(store, mode="r+")["features/b"].attrs["fingerprint"] = "re-extracted"
    err = one_line_error(capsys, store, "--out", out, "--resume", *RUN)
    assert "was trained on other features of encoder(s) ['b']" in err
