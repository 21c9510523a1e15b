"""The ``lm`` objective: MERV's language-model loss over the fused visual tokens.

The fused tokens [B, N, d] go into a frozen causal language model right after BOS, with label
-100 and attention mask 1 at their positions; the loss is the model's own shifted
cross-entropy, averaged over every supervised token of the batch (not a mean of per-sample
means), as the reference computes it. Batches are padded on the right.

The language model is not a submodule: it stays out of the mixer's state dict, its optimizer
and DDP, and its weights are never changed (``requires_grad`` off).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from ..objectives import register_objective
from .prompts import IGNORE, tokenize
from .text import Conversation


@register_objective("lm")
class LanguageModelObjective(nn.Module):
    """Options (``objective_options``): ``model`` (folder or hub id), ``revision``, ``prompt``
    (pure | vicuna), ``format`` (align: caption then EOS; finetune: conversations),
    ``max_length`` (text tokens, 2048 as the reference), ``text`` (the text file, None: the
    manifest's columns; read by ``mixer.selection``)."""

    @staticmethod
    def targets(_options) -> str:
        return "text"  # target i: the run's conversation i

    def __init__(
        self,
        d_model: int,
        n_tokens: int,
        num_classes: int = 0,
        model: str = "",
        revision: str | None = None,
        prompt: str = "pure",
        format: str = "finetune",
        max_length: int = 2048,
        text: str | None = None,
    ) -> None:
        super().__init__()
        if not model:
            raise ValueError(
                "objective lm needs objective_options.model: a folder or hub id of a causal LM"
            )
        if format not in ("align", "finetune"):
            raise ValueError(f"objective_options.format must be align or finetune, got {format!r}")
        self.d_model, self.n_tokens = d_model, n_tokens
        self.source, self.revision = model, revision
        self.prompt, self.format, self.max_length = prompt, format, max_length
        self.text = text
        self.__dict__["_lm"] = None  # plain attribute: never a submodule
        self.samples: list[tuple[list[int], list[int]]] = []

    @property
    def lm(self):
        return self.language_model()

    def language_model(self, device: torch.device | str | None = None):
        """The frozen model, loaded on first use on ``device`` (bf16 on a GPU), and moved there
        if it was loaded elsewhere."""
        if self._lm is not None:
            if device is not None:
                self._lm.model.to(device)
            return self._lm
        from .backbone import load_language_model

        lm = load_language_model(self.source, self.revision, device or "cpu")
        if lm.hidden_size != self.d_model:
            raise ValueError(
                f"the language model {self.source} has hidden size {lm.hidden_size}, the "
                f"projectors d_model {self.d_model}: set d_model to {lm.hidden_size}"
            )
        self.__dict__["_lm"] = lm
        return lm

    def attach(self, conversations: Sequence[Conversation]) -> None:
        """Tokenise the run's text: target ``i`` of a batch is ``conversations[i]``."""
        tok = self.lm.tokenizer
        self.samples = [
            tokenize(c, tok, self.format, self.prompt, self.max_length) for c in conversations
        ]

    def loss_weight(self, targets: Tensor) -> int:
        """The samples' supervised tokens: the loss is their mean over the whole batch."""
        return sum(sum(lab != IGNORE for lab in self.samples[int(i)][1][1:]) for i in targets)

    def forward(self, tokens: Tensor) -> Tensor:
        return tokens  # the fused tokens are the language model's visual input

    def batch(self, visual: Tensor, targets: Tensor) -> dict[str, Tensor]:
        """inputs_embeds, attention_mask and labels of the samples ``targets``, the visual
        tokens right after BOS, right-padded."""
        lm = self.language_model(visual.device)
        model = lm.model
        pairs = [self.samples[int(i)] for i in targets]
        width = max(len(ids) for ids, _ in pairs)
        pad = lm.tokenizer.pad_token_id if lm.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(pairs), width), pad, dtype=torch.long)
        labels = torch.full((len(pairs), width), IGNORE, dtype=torch.long)
        mask = torch.zeros((len(pairs), width), dtype=torch.long)
        for row, (i, lab) in enumerate(pairs):
            ids[row, : len(i)], labels[row, : len(lab)], mask[row, : len(i)] = (
                torch.tensor(i), torch.tensor(lab), 1
            )  # fmt: skip
        ids, labels, mask = ids.to(visual.device), labels.to(visual.device), mask.to(visual.device)
        embeds = model.get_input_embeddings()(ids)
        b, n = visual.shape[:2]
        visual = visual.to(embeds.dtype)
        return {
            "inputs_embeds": torch.cat([embeds[:, :1], visual, embeds[:, 1:]], dim=1),
            "attention_mask": torch.cat([mask[:, :1], mask.new_ones(b, n), mask[:, 1:]], dim=1),
            "labels": torch.cat([labels[:, :1], labels.new_full((b, n), IGNORE), labels[:, 1:]], 1),
        }

    def loss_and_correct(self, visual: Tensor, targets: Tensor) -> tuple[Tensor, int]:
        """The batch's mean loss over its supervised tokens, and how many samples have every
        supervised token predicted (greedy, teacher-forced)."""
        inputs = self.batch(visual, targets)
        out = self.lm.model(**inputs)
        with torch.no_grad():
            predicted = out.logits[:, :-1].argmax(-1)
            gold = inputs["labels"][:, 1:]
            wrong = ((predicted != gold) & (gold != IGNORE)).any(dim=1)
        return out.loss.float(), int((~wrong).sum())

    def loss(self, visual: Tensor, targets: Tensor) -> Tensor:
        return self.loss_and_correct(visual, targets)[0]

    @torch.no_grad()
    def correct(self, visual: Tensor, targets: Tensor) -> int:
        return self.loss_and_correct(visual, targets)[1]
