"""Objectives: a small trainable head over the fused tokens [B, N, d] plus its loss.

A factory is called as `factory(d_model=..., n_tokens=..., num_classes=..., **objective_options)`
and returns a module with `forward(tokens) -> output`, `loss(output, targets) -> Tensor` and
`correct(output, targets) -> int`, `loss_and_correct(output, targets)` (both from one forward
of the head) and `loss_weight(targets)` (the batch's weight in a mean over batches: rows, or
supervised tokens). "probe" is here; "lm" (a frozen causal LM, the visual tokens after BOS) is in
`mixer.lm.objective`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .registry import Registry

OBJECTIVES = Registry("objective")
register_objective = OBJECTIVES.register


def objective_encoders(config) -> list[str]:
    """Encoders the objective of ``config`` (a TrainConfig) reads beside the model's: an
    objective class may say so with ``reads_encoders(options)`` (a distillation: its teacher's
    encoders); their features reach ``loss_and_correct`` and ``correct`` after the targets."""
    reads = getattr(OBJECTIVES.lookup(config.objective), "reads_encoders", None)
    return list(reads(config.objective_options)) if reads else []


def target_kind(config) -> str:
    """What a row's target is: "labels" (a class index, the default), "text" (a conversation)
    or "rows" (its position: an objective that needs neither); ``targets(options)`` of the
    objective class says."""
    kind = getattr(OBJECTIVES.lookup(config.objective), "targets", None)
    return kind(config.objective_options) if kind else "labels"


@register_objective("probe")
class ProbeHead(nn.Module):
    """Classification probe that keeps token order.

    Each token is squeezed to `token_dim` channels (Linear + GELU), the [N, token_dim] map is
    flattened and one Linear gives the class logits. Flattening (not averaging) over tokens keeps
    the time step and grid cell of every token, so labels that depend on temporal order (motion
    left vs right) are learnable; a mean over time could not tell them apart.
    """

    def __init__(
        self,
        d_model: int,
        n_tokens: int,
        num_classes: int,
        token_dim: int = 4,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"probe needs at least 2 classes, got {num_classes}")
        self.n_tokens = n_tokens
        self.reduce = nn.Linear(d_model, token_dim)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(n_tokens * token_dim, num_classes)

    def forward(self, tokens: Tensor) -> Tensor:
        if tokens.shape[1] != self.n_tokens:
            raise ValueError(f"probe built for {self.n_tokens} tokens got {tokens.shape[1]}")
        z = F.gelu(self.reduce(tokens))  # [B, N, r]
        return self.classifier(self.dropout(z.flatten(1)))

    def loss(self, logits: Tensor, targets: Tensor) -> Tensor:
        return F.cross_entropy(logits, targets)

    def loss_weight(self, targets: Tensor) -> int:
        """A batch's share of the mean loss: its rows."""
        return len(targets)

    def loss_and_correct(self, logits: Tensor, targets: Tensor) -> tuple[Tensor, int]:
        return self.loss(logits, targets), self.correct(logits.detach(), targets)

    @torch.no_grad()
    def correct(self, logits: Tensor, targets: Tensor) -> int:
        return int((logits.argmax(dim=-1) == targets).sum())


OBJECTIVES.register_module("lm", "mixer.lm.objective")  # the frozen language model's loss
OBJECTIVES.register_module("distill", "mixer.distill.objective")  # a teacher's fused tokens
