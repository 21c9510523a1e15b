"""The reference's prompt builders and label masks, on a real (tiny, word-level) tokenizer:
exactly the answer tokens, each with its </s>, are supervised; every human turn is masked."""

from __future__ import annotations

import pytest

from mixer.lm.prompts import (
    IGNORE,
    VICUNA_SYSTEM,
    prompt_builder,
    tokenize_caption,
    tokenize_conversation,
)
from mixer.lm.text import Conversation
from mixer.lm.tiny import word_tokenizer

WORDS = ["what colour is it ?", "red", "and the motion ?", "left to right", "a red ball"]


@pytest.fixture(scope="module")
def tok():
    return word_tokenizer(WORDS)


def ids(tok, text: str, bos: bool = False) -> list[int]:
    return tok(text, add_special_tokens=bos).input_ids


def test_pure_builder_strings_are_the_references():
    b = prompt_builder("pure")
    assert b.add_turn("human", "  <image><video>\nwhat colour is it?  ") == (
        "In: <video>\nwhat colour is it?\nOut: "  # <image> removed, <video> kept, stripped
    )
    assert b.add_turn("gpt", "red") == "red</s>"
    assert b.add_turn("human", "and?") == "In: and?\nOut: "
    assert b.get_prompt() == "In: <video>\nwhat colour is it?\nOut: red</s>In: and?\nOut:"
    assert prompt_builder("pure").wrap_gpt("") == " </s>"
    with pytest.raises(ValueError, match="turn 0 must be from human"):
        prompt_builder("pure").add_turn("gpt", "x")


def test_vicuna_builder_puts_its_system_prompt_before_the_first_turn_only():
    b = prompt_builder("vicuna")
    assert VICUNA_SYSTEM.endswith("polite answers to the user's questions.")
    first = b.add_turn("human", "what colour is it?")
    assert first == VICUNA_SYSTEM + " USER: what colour is it? ASSISTANT: "
    b.add_turn("gpt", "red")
    assert b.add_turn("human", "and?") == "USER: and? ASSISTANT: "


@pytest.mark.parametrize("prompt", ["pure", "vicuna"])
def test_multi_turn_labels_cover_exactly_the_answers(tok, prompt):
    conv = Conversation([("human", "what colour is it?"), ("gpt", "red"),
                         ("human", "and the motion?"), ("gpt", "left to right")])  # fmt: skip
    input_ids, labels = tokenize_conversation(conv, tok, prompt)
    b = prompt_builder(prompt)
    pieces = [b.add_turn(role, text).rstrip() for role, text in conv.turns]
    want = [
        ids(tok, pieces[0], bos=True),
        ids(tok, pieces[1]),
        ids(tok, pieces[2]),
        ids(tok, pieces[3]),
    ]
    assert input_ids == [i for p in want for i in p]
    assert input_ids[0] == tok.bos_token_id
    supervised = [i for i, lab in zip(input_ids, labels, strict=True) if lab != IGNORE]
    assert supervised == ids(tok, "red</s>") + ids(tok, "left to right</s>")
    assert [lab for lab in labels if lab != IGNORE] == supervised
    assert supervised.count(tok.eos_token_id) == 2  # each answer keeps its closing </s>
    assert labels[: len(want[0])] == [IGNORE] * len(want[0])


def test_align_format_is_bos_caption_eos_with_bos_masked(tok):
    input_ids, labels = tokenize_caption(" a red ball ", tok)
    assert input_ids == [tok.bos_token_id, *ids(tok, "a red ball"), tok.eos_token_id]
    assert labels == [IGNORE, *input_ids[1:]]


def test_max_length_truncates_ids_and_labels_together(tok):
    conv = Conversation([("human", "what colour is it?"), ("gpt", "red")])
    input_ids, labels = tokenize_conversation(conv, tok, "pure", max_length=5)
    assert len(input_ids) == len(labels) == 5
