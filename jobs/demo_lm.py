"""The demo's last step: MERV's alignment stage on the cache, end to end on CPU.

A tiny random Llama (`mixer.lm.tiny`) is first trained on the demo captions' text alone, then
frozen; the projectors and mixer are aligned on the store (`objective lm`, align format: the
caption, then EOS; with the demo's four encoders, held-out multiple choice is 88% after 100
epochs and 100% after 200); held-out videos are then scored by multiple choice over the four
captions and captioned by greedy generation, which must name their colour and their motion.

The mixer is `cross_attention_time_mix` (MERV's, then a learned mix over time steps): the tiny
random encoders put little motion into any single token and a two-layer language model cannot
compare frames, so with MERV's mixer alone "moves left" and "moves right" stay at chance
(measured: held-out motion 44-56%, colour 74-100%); see `mixer/time_mix.py`.
"""

from __future__ import annotations

import csv
import os

CAPTION = "a {colour} square moves {direction}"  # the demo's labels are colour_direction


def caption_of(label: str) -> str:
    colour, direction = label.split("_")
    return CAPTION.format(colour=colour, direction=direction)


def held_out(video_id: str) -> bool:
    """Every third clip of each class (ids end in a per-class number)."""
    return int(video_id.rsplit("_", 1)[1]) % 3 == 0


def write_text(labels: list[tuple[str, str]], out: str) -> tuple[str, str]:
    """captions.csv (video_id, caption) and split.csv (video_id, split) in ``out``."""
    os.makedirs(out, exist_ok=True)
    captions, split = os.path.join(out, "captions.csv"), os.path.join(out, "split.csv")
    with open(captions, "w", newline="") as f:
        csv.writer(f).writerows([("video_id", "caption")] +
                                [(v, caption_of(lab)) for v, lab in labels])  # fmt: skip
    with open(split, "w", newline="") as f:
        csv.writer(f).writerows([("video_id", "split")] +
                                [(v, "val" if held_out(v) else "train") for v, _ in labels])  # fmt: skip
    return captions, split


def align_demo(store: str, labels: list[tuple[str, str]], out: str, epochs: int = 200,
               echo=print) -> dict:  # fmt: skip
    """Train the tiny LM on the captions, align on ``store``, score the held-out videos.
    Returns held-out MCQ accuracy, the share of generated captions exactly right, the first
    and last epoch's loss and one (video, generated caption) pair per class."""
    from mixer import TrainConfig, train
    from mixer.lm.evaluate import answer, load_lm_checkpoint, multiple_choice
    from mixer.lm.tiny import make_tiny_lm

    captions, split = write_text(labels, out)
    options = sorted({caption_of(lab) for _, lab in labels})
    lm = os.path.join(out, "tiny-llama")
    make_tiny_lm(lm, options, steps=300)
    run = os.path.join(out, "align")
    config = TrainConfig(
        store=store, objective="lm", split_file=split,
        objective_options={"model": lm, "format": "align", "text": captions},
        fusion="cross_attention_time_mix", fusion_options={"attn_dim": 64}, pool_grid=2,
        epochs=epochs, batch_size=16, micro_batch_size=16, lr=3e-3, loader_workers=0,
        progress=False, out=run,
    )  # fmt: skip
    result = train(config, log=lambda *_: None)
    model = load_lm_checkpoint(run)
    val = [(v, lab) for v, lab in labels if held_out(v)]
    questions = [{"video_id": v, "question": None, "options": options,
                  "answer": options.index(caption_of(lab))} for v, lab in val]  # fmt: skip
    mcq = multiple_choice(model, store, questions)
    generated = [(v, answer(model, store, v, None)) for v, _ in val]
    right = sum(g == caption_of(lab) for (_, g), (_, lab) in zip(generated, val, strict=True))
    by_class = {lab: (v, g) for (v, g), (_, lab) in zip(generated, val, strict=True)}
    examples = list(by_class.values())  # one held-out video of each class (its last)
    summary = {"mcq": mcq["accuracy"], "chance": mcq["chance"],
               "generated_right": right / max(1, len(val)), "first_loss": result.train_loss[0],
               "last_loss": result.train_loss[-1], "examples": examples, "checkpoint": run}  # fmt: skip
    echo(f"aligned a frozen tiny Llama on {len(labels) - len(val)} videos in "
         f"{result.seconds:.0f}s (loss {summary['first_loss']:.3f} -> {summary['last_loss']:.3f});"
         f" held-out multiple choice {100 * summary['mcq']:.0f}% (chance "
         f"{100 * summary['chance']:.0f}%), generated captions right {right}/{len(val)}")  # fmt: skip
    for video, text in examples:
        echo(f"  {video}: {text!r}")
    echo(f"try: merv generate {store} --checkpoint {run} --video-id {val[0][0]}")
    return summary
