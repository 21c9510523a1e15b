"""A named split (train / val / test per video) from a file or a manifest column: the run
trains and validates on exactly those rows, leaves test rows out, refuses a split it cannot
read with one line naming the fix, and a resumed run refuses rows that changed."""

from __future__ import annotations

import numpy as np
import pytest

from jobs.cli import main
from mixer import TrainConfig, train
from mixer.selection import select_rows
from tests.helpers import quiet
from tests.mixer.conftest import write_store

N = 24
PARTS = ["train", "validation", "train", "test"] * (N // 4)  # vid i: PARTS[i]


@pytest.fixture
def store(synth, tmp_path):
    feats, y = synth.separable(N, {"a": 4, "b": 3}, informative="a", margin=2.0)
    url = str(tmp_path / "store.zarr")
    write_store(url, feats, [f"c{v}" for v in y], failed=[4], shard_size=8, columns={
        "subset": PARTS})  # fmt: skip
    return url


def write_split_file(path, parts, column="split"):
    path.write_text(
        f"video_id,{column}\n" + "".join(f"vid{i:04d},{p}\n" for i, p in enumerate(parts))
    )
    return str(path)


def videos(data, which) -> list[int]:
    return data.rows[which].tolist()


def expected(parts, part) -> list[int]:
    return [i for i, p in enumerate(parts) if p == part and i != 4]  # row 4 failed


def test_split_file_gives_exactly_its_train_and_val_rows(store, tmp_path):
    parts = ["val", "train", "test", "train"] * (N // 4)
    path = write_split_file(tmp_path / "split.csv", parts)
    messages: list[str] = []
    data = select_rows(TrainConfig(store=store, split_file=path), messages.append)
    assert videos(data, data.train) == expected(parts, "train")
    assert videos(data, data.val) == expected(parts, "val")
    assert not set(data.rows.tolist()) & set(expected(parts, "test"))
    assert "split from split file" in messages[-1] and "12 train, 5 val, 6 test" in messages[-1]


def test_manifest_column_split_and_its_spellings(store):
    data = select_rows(TrainConfig(store=store, split_column="subset"), quiet)
    assert videos(data, data.train) == expected(PARTS, "train")
    assert videos(data, data.val) == expected(PARTS, "validation")
    # the fraction split of the same store mixes every row in
    fraction = select_rows(TrainConfig(store=store, val_fraction=0.25), quiet)
    assert len(fraction.rows) == N - 1


def test_training_on_a_named_split_validates_on_its_val_rows(store, tmp_path):
    cfg = TrainConfig(store=store, split_column="subset", d_model=8, epochs=2, batch_size=4,
                      pool_grid=1, fusion_options={"attn_dim": 8})  # fmt: skip
    res = train(cfg, log=quiet)
    assert res.n_train == len(expected(PARTS, "train")) and res.n_val == 6


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: ["--split-column", "nope"],
         "'subset']): pass --split-file with video_id,nope rows, or carry a nope column"),
        (lambda d: ["--split-file", write_split_file(d / "s.csv", PARTS[:20])],
         "4 of 23 ok video(s) have no split in split file"),
        (lambda d: ["--split-file", write_split_file(d / "s.csv", ["train", "holdout"] * 12)],
         "video 'vid0001' has split 'holdout'; use one of"),
        (lambda d: ["--split-file", write_split_file(d / "s.csv", ["train"] * N, "part")],
         "lacks column(s) ['split']; has ['video_id', 'part']"),
        (lambda d: ["--split-file", write_split_file(d / "s.csv", ["test"] * N)],
         "puts every ok video in test: nothing to train on"),
    ],
)  # fmt: skip
def test_a_split_that_cannot_be_used_is_one_line(store, tmp_path, capsys, make, message):
    with pytest.raises(SystemExit) as stop:
        main(["train", store, "--d-model", "8", "--epochs", "1", *make(tmp_path)])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1, err
    assert message in err


def test_resume_refuses_a_changed_split(store, tmp_path):
    out = tmp_path / "out"
    cfg = TrainConfig(store=store, split_column="subset", d_model=8, epochs=1, batch_size=4,
                      pool_grid=1, fusion_options={"attn_dim": 8}, out=str(out),
                      checkpoint_every=2)  # fmt: skip
    train(cfg, log=quiet)
    again = train(cfg.replace(resume=True, epochs=2), log=quiet)  # the same rows resume
    assert again.n_train == len(expected(PARTS, "train"))
    other = write_split_file(tmp_path / "other.csv", np.roll(PARTS, 1).tolist())
    with pytest.raises(ValueError, match="trained on other train / val rows"):
        train(cfg.replace(resume=True, split_column=None, split_file=other), log=quiet)
