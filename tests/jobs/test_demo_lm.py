"""MERV's alignment stage end to end on CPU, as `merv demo` runs it: synthetic clips -> two tiny
encoders on local Ray -> Zarr -> a tiny Llama trained on the captions' text alone, then frozen
-> projectors and mixer aligned on the cache -> held-out videos scored by multiple choice and
captioned by generation, which must name their colour and their motion (jobs/demo_lm.py)."""

from __future__ import annotations

import json

import pytest

from jobs.cli import main
from jobs.demo_lm import align_demo, caption_of, held_out
from pipeline.synthetic import make_corpus
from tests.helpers import quiet, run_extract_quietly


def test_held_out_videos_are_captioned_with_their_colour_and_motion(tmp_path, ray_session, capsys):
    labels = make_corpus(str(tmp_path / "corpus"), per_class=48)  # 128 to train, 64 held out
    store = str(tmp_path / "store.zarr")
    run_extract_quietly(tmp_path / "corpus", store, "dinov2-tiny,siglip-tiny", shard_size=16)
    summary = align_demo(store, labels, str(tmp_path / "lm"), epochs=100, echo=quiet)

    assert summary["last_loss"] < summary["first_loss"] / 4  # the loss falls
    assert summary["chance"] == 0.25 and summary["mcq"] >= 0.9  # four captions to choose from
    assert summary["generated_right"] >= 0.85  # colour and motion both named, word for word

    mcq = tmp_path / "mcq.jsonl"  # what `merv eval --mcq` reads: the same held-out questions
    options = sorted({caption_of(lab) for _, lab in labels})
    mcq.write_text("".join(json.dumps({"video_id": v, "options": options, "answer": caption_of(lab)})
                           + "\n" for v, lab in labels if held_out(v)))  # fmt: skip
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["eval", store, "--checkpoint", summary["checkpoint"], "--mcq", str(mcq), "--json"])
    assert stop.value.code == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["multiple_choice"]["questions"] == 64
    assert scored["multiple_choice"]["accuracy"] == summary["mcq"]
    assert scored["held_out"]["videos"] == 64 and scored["held_out"]["perplexity"] < 1.5

    video, label = next((v, lab) for v, lab in labels if held_out(v) and lab == "blue_left")
    with pytest.raises(SystemExit) as stop:
        main(["generate", store, "--checkpoint", summary["checkpoint"], "--video-id", video])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == caption_of(label) == "a blue square moves left"
