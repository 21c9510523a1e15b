"""A tiny Llama-architecture language model for tests and the offline demo.

No weights can be downloaded here, so the demo and the tests build a real ``LlamaForCausalLM``
from a small config, with a word-level tokenizer over the texts it will see, pre-train it
briefly on those texts alone (so it knows their words), and save both to a folder that
``load_language_model`` reads like any other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch

SPECIALS = {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
# words of the prompt builders (mixer.lm.prompts) and the <video> placeholder
PROMPT_TEXT = "In: Out: USER: ASSISTANT: <video> A chat between a curious user and an"


def word_tokenizer(texts: Sequence[str]):
    """A fast tokenizer whose vocabulary is every word and punctuation mark of ``texts``;
    BOS is added in front of a text, as Llama's tokenizer does."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    split = pre_tokenizers.Whitespace()
    words = sorted({w for t in [*texts, PROMPT_TEXT] for w, _ in split.pre_tokenize_str(t)})
    vocab = {tok: i for i, tok in enumerate([*SPECIALS.values(), *words])}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=SPECIALS["unk_token"]))
    tok.pre_tokenizer = split
    tok.add_special_tokens(list(SPECIALS.values()))
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", vocab["<s>"])]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, **SPECIALS)


def tiny_llama(tokenizer, hidden: int = 64, layers: int = 2, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=2 * hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=4096,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    return LlamaForCausalLM(config)


def pretrain_on_text(model, tokenizer, texts: Sequence[str], steps: int = 200, lr: float = 3e-3):
    """Next-token training on ``texts`` alone (each with BOS and a closing EOS): the model
    learns the words before it ever sees a visual token. Returns the last loss."""
    enc = tokenizer([t + tokenizer.eos_token for t in texts], padding=True, return_tensors="pt")
    labels = enc.input_ids.masked_fill(enc.attention_mask == 0, -100)
    opt = torch.optim.AdamW(model.parameters(), lr=lr)
    model.train()
    loss = torch.tensor(float("nan"))
    for _ in range(steps):
        loss = model(**enc, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    return float(loss.detach())


def make_tiny_lm(folder: str | Path, texts: Sequence[str], steps: int = 200, hidden: int = 64):
    """Build, pre-train on ``texts`` and save a tiny Llama and its tokenizer in ``folder``.

    Each text is seen alone and also after another text and again after itself ("t . t"):
    trained on the texts alone, a model this small learns their frequencies and ignores its
    context, so nothing placed before a caption (the visual tokens) could change its
    prediction; a real language model reads its context, and the repeats teach this one to.
    """
    tokenizer = word_tokenizer(texts)
    model = tiny_llama(tokenizer, hidden=hidden)
    corpus = [*texts, *(f"{a} . {b}" for a in texts for b in texts)]
    corpus += [f"{t} . {t}" for t in texts] * max(1, len(texts) - 1)  # as many repeats as not
    loss = pretrain_on_text(model, tokenizer, corpus, steps) if steps else float("nan")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # a bar per weights file is noise in the demo's output
    folder = Path(folder)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return loss
