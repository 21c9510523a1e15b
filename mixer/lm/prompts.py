"""The reference's prompt builders and its tokenisation of a sample into (input_ids, labels).

Strings and rules are princetonvisualai/merv's (``prompting/base_prompter.py``,
``vicuna_v15_prompter.py``, ``preprocessing/datasets/datasets.py``):

- ``pure`` (Llama-2 base, the default): ``In: {question}\\nOut: `` then ``{answer}</s>``;
- ``vicuna``: a system prompt, then ``USER: {question} ASSISTANT: `` and ``{answer}</s>``.

Every message is stripped and loses ``<image>``; ``<video>`` stays as literal text (the
reference's line that would remove it is commented out, so its instruction prompts keep it).
Each turn is tokenised on its own, right-stripped, with BOS on the first turn only; human turns
are masked (-100), answers are supervised with their ``</s>``. Labels of BOS are masked too.
"""

from __future__ import annotations

from collections.abc import Callable

from .text import Conversation

IGNORE = -100
VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. The assistant "
    "gives helpful, detailed, and polite answers to the user's questions."
)


class PromptBuilder:
    """Builds one conversation turn by turn (human first, alternating)."""

    bos, eos = "<s>", "</s>"
    system = ""

    def __init__(self) -> None:
        self.prompt, self.turns = "", 0

    def wrap_human(self, msg: str) -> str:
        raise NotImplementedError

    def wrap_gpt(self, msg: str) -> str:
        return f"{msg if msg != '' else ' '}{self.eos}"  # an empty answer is " </s>", as there

    def add_turn(self, role: str, message: str) -> str:
        want = "human" if self.turns % 2 == 0 else "gpt"
        if role != want:
            raise ValueError(f"turn {self.turns} must be from {want}, got {role}")
        message = message.replace("<image>", "").strip()
        if role == "human":
            wrapped = (self.system if self.turns == 0 else "") + self.wrap_human(message)
        else:
            wrapped = self.wrap_gpt(message)
        self.prompt += wrapped
        self.turns += 1
        return wrapped

    def get_prompt(self) -> str:
        """The text to generate from: the turns so far, without BOS, right-stripped."""
        return self.prompt.removeprefix(self.bos).rstrip()


class PurePromptBuilder(PromptBuilder):
    def wrap_human(self, msg: str) -> str:
        return f"In: {msg}\nOut: "


class VicunaPromptBuilder(PromptBuilder):
    system = VICUNA_SYSTEM.strip() + " "

    def wrap_human(self, msg: str) -> str:
        return f"USER: {msg} ASSISTANT: "


PROMPT_BUILDERS: dict[str, Callable[[], PromptBuilder]] = {
    "pure": PurePromptBuilder,
    "vicuna": VicunaPromptBuilder,
}


def prompt_builder(name: str) -> PromptBuilder:
    if name not in PROMPT_BUILDERS:
        raise ValueError(f"unknown prompt builder {name!r}; known: {sorted(PROMPT_BUILDERS)}")
    return PROMPT_BUILDERS[name]()


def tokenize_conversation(
    conv: Conversation, tokenizer, prompt: str = "pure", max_length: int = 2048
) -> tuple[list[int], list[int]]:
    """Finetune format: every turn through the prompt builder; answers supervised."""
    builder = prompt_builder(prompt)
    ids: list[int] = []
    labels: list[int] = []
    for k, (role, text) in enumerate(conv.turns):
        msg = builder.add_turn(role, text).rstrip()  # Llama's fast tokenizer and a trailing space
        piece = tokenizer(msg, add_special_tokens=k == 0).input_ids
        ids += piece
        labels += [IGNORE] * len(piece) if role == "human" else list(piece)
    ids, labels = ids[:max_length], labels[:max_length]
    labels[0] = IGNORE  # BOS: the video's tokens follow it
    return ids, labels


def tokenize_caption(
    caption: str, tokenizer, max_length: int = 2048
) -> tuple[list[int], list[int]]:
    """Align format: BOS, the caption and EOS (added as text, as the reference does); every
    token but BOS supervised. The human turn is dropped."""
    ids = tokenizer(caption.strip() + tokenizer.eos_token, add_special_tokens=True).input_ids
    ids = ids[:max_length]
    labels = list(ids)
    labels[0] = IGNORE
    return ids, labels


def tokenize(conv: Conversation, tokenizer, fmt: str, prompt: str, max_length: int):
    """(input_ids, labels) of ``conv`` in the stage format ``fmt`` (align | finetune)."""
    if fmt == "align":
        return tokenize_caption(conv.caption, tokenizer, max_length)
    if fmt == "finetune":
        return tokenize_conversation(conv, tokenizer, prompt, max_length)
    raise ValueError(f"unknown text format {fmt!r}; use align or finetune")
