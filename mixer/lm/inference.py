"""Using a trained lm-objective model: option log-likelihoods (multiple-choice scoring) and
greedy generation, the visual tokens after BOS as in training."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from .prompts import IGNORE, prompt_builder, tokenize
from .text import Conversation


@torch.no_grad()
def answer_logliks(model, features: Sequence[Tensor], conversations: Sequence[Conversation]):
    """Summed log-likelihood of each conversation's supervised tokens (its answers), given
    the video of the same index in ``features`` (per encoder [n, T, G*G, C])."""
    head = model.head
    tok = head.lm.tokenizer
    visual, _ = model.fuse(features)
    head.samples = [
        tokenize(c, tok, head.format, head.prompt, head.max_length) for c in conversations
    ]
    inputs = head.batch(visual, torch.arange(len(conversations)))
    logits = head.lm.model(inputs_embeds=inputs["inputs_embeds"],
                           attention_mask=inputs["attention_mask"]).logits.float()  # fmt: skip
    gold = inputs["labels"][:, 1:]
    logp = logits[:, :-1].log_softmax(-1).gather(-1, gold.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (logp * (gold != IGNORE)).sum(dim=1)


def choose_options(model, features, question: str | None, options: Sequence[str]) -> int:
    """The option the model finds likeliest as the answer to ``question`` about one video
    (align models: the likeliest caption, ``question`` unused)."""
    convs = [Conversation([("human", question or "<video>"), ("gpt", o)]) for o in options]
    repeated = [f.expand(len(options), *f.shape[1:]) for f in features]
    return int(answer_logliks(model, repeated, convs).argmax())


@torch.no_grad()
def generate(model, features: Sequence[Tensor], question: str | None = None, max_new_tokens=32):
    """The model's greedy answer for one video: after the visual tokens, the prompt of
    ``question`` (finetune models) or nothing (align models: a caption)."""
    head = model.head
    lm, tok = head.lm, head.lm.tokenizer
    visual, _ = model.fuse(features)
    text = ""
    if head.format == "finetune":
        builder = prompt_builder(head.prompt)
        builder.add_turn("human", question or "<video>")
        text = builder.get_prompt()
    ids = tok(text, add_special_tokens=True, return_tensors="pt").input_ids.to(visual.device)
    embeds = lm.model.get_input_embeddings()(ids)
    inputs = torch.cat([embeds[:, :1], visual.to(embeds.dtype), embeds[:, 1:]], dim=1)
    mask = torch.ones(inputs.shape[:2], dtype=torch.long, device=inputs.device)
    out = lm.model.generate(inputs_embeds=inputs, attention_mask=mask, do_sample=False,
                            max_new_tokens=max_new_tokens, pad_token_id=tok.pad_token_id)  # fmt: skip
    return tok.decode(out[0], skip_special_tokens=True).strip()
