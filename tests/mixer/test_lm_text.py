"""Text joins the store by video_id from LLaVA JSON, CSV/JSONL/Parquet tables or the manifest's
carried columns; what does not join is counted and reported."""

from __future__ import annotations

import json

import pytest

from mixer.lm.text import read_text


def test_llava_json_groups_a_videos_entries_in_file_order(tmp_path):
    path = tmp_path / "train.json"
    path.write_text(json.dumps([
        {"id": "v1", "video": "a/v1.mp4", "conversations": [
            {"from": "human", "value": "<video>\nwhat colour?"}, {"from": "gpt", "value": "red"}]},
        {"id": "img", "image": "x.jpg", "conversations": []},
        {"id": "v1", "video": "a/v1.mp4", "conversations": [
            {"from": "human", "value": "motion?"}, {"from": "gpt", "value": "left"}]},
    ]))  # fmt: skip
    text = read_text(str(path))
    assert list(text.by_video) == ["v1"]
    assert text.by_video["v1"].turns == [
        ("human", "<video>\nwhat colour?"),
        ("gpt", "red"),
        ("human", "motion?"),
        ("gpt", "left"),
    ]
    assert text.report(["v1", "v2"]) == (["v2"], [])


@pytest.mark.parametrize("fmt", ["csv", "jsonl"])
def test_caption_and_question_answer_tables(tmp_path, fmt):
    rows = [{"video_id": "v1", "caption": "a red ball"}, {"video_id": "v9", "caption": "x"}]
    path = tmp_path / f"captions.{fmt}"
    if fmt == "csv":
        path.write_text(
            "video_id,caption\n" + "".join(f"{r['video_id']},{r['caption']}\n" for r in rows)
        )
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = read_text(str(path))
    assert text.by_video["v1"].caption == "a red ball"
    assert text.report(["v1"]) == ([], ["v9"])  # v9 has text but is not ok in the store
    qa = tmp_path / "qa.csv"
    qa.write_text("video_id,question,answer\nv1,what colour?,red\n")
    assert read_text(str(qa)).by_video["v1"].turns == [("human", "what colour?"), ("gpt", "red")]


def test_bad_text_is_one_clear_error(tmp_path):
    bad = tmp_path / "t.csv"
    bad.write_text("video_id,text\nv1,x\n")
    with pytest.raises(ValueError, match="needs video_id,caption or video_id,question,answer"):
        read_text(str(bad))
    turns = tmp_path / "t.json"
    turns.write_text(json.dumps([{"id": "v", "video": "v.mp4", "conversations": [
        {"from": "gpt", "value": "x"}]}]))  # fmt: skip
    with pytest.raises(ValueError, match="turn 0 is from gpt; turns alternate human, gpt"):
        read_text(str(turns))
