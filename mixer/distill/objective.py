"""The ``distill`` objective: a student's fused tokens against its teacher's, on the cache.

The teacher (a trained projectors + mixer checkpoint) is frozen and is not a submodule: it
stays out of the student's state dict, optimizer and DDP, as the language model of ``lm``
does. It reads its own encoders' features, which the run streams after the student's
(``reads_encoders``), and turns them into the target tokens of every batch.

The loss is ``cosine_weight * (1 - cos) + smooth_l1_weight * smooth_l1`` per token, averaged
over tokens and rows. A row is "correct" when the teacher's own probe, fed the student's
tokens, predicts its label (a teacher without a probe: when the row's mean token cosine is at
least ``agree_cosine``), so a run's val accuracy is the downstream metric kept.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from ..checkpoint import WEIGHTS_NAME, load_model, read_spec
from ..objectives import register_objective


def teacher_file(path: str) -> Path:
    """The teacher's weights file: ``path`` itself or ``path/model.safetensors``."""
    if not path:
        raise ValueError("objective distill needs objective_options.teacher: a trained "
                         "checkpoint (the folder of a merv train run)")  # fmt: skip
    p = Path(path)
    p = p / WEIGHTS_NAME if p.is_dir() else p
    if not p.exists():
        raise ValueError(f"teacher checkpoint {p} does not exist: pass a merv train output folder")
    return p


@register_objective("distill")
class DistillObjective(nn.Module):
    """Options: ``teacher`` (checkpoint), ``cosine_weight`` (1.0), ``smooth_l1_weight`` (1.0),
    ``smooth_l1_beta`` (1.0), ``agree_cosine`` (0.9)."""

    @staticmethod
    def reads_encoders(options) -> list[str]:
        return list(read_spec(teacher_file(options.get("teacher", ""))).encoders)

    @staticmethod
    def targets(options) -> str:
        """A probe teacher scores the student on the class labels; others need no target."""
        spec = read_spec(teacher_file(options.get("teacher", "")))
        return "labels" if spec.objective == "probe" else "rows"

    def __init__(
        self,
        d_model: int,
        n_tokens: int,
        num_classes: int = 0,
        teacher: str = "",
        cosine_weight: float = 1.0,
        smooth_l1_weight: float = 1.0,
        smooth_l1_beta: float = 1.0,
        agree_cosine: float = 0.9,
    ) -> None:
        super().__init__()
        t = load_model(teacher_file(teacher)).eval().requires_grad_(False)
        spec = t.spec
        fused = t.feature_fusion.out_tokens(spec.n_tokens)
        if spec.d_model != d_model or fused != n_tokens:
            raise ValueError(
                f"teacher {teacher} gives {fused} tokens of width {spec.d_model}, the student "
                f"{n_tokens} of {d_model}: distill with the teacher's d_model and pooling"
            )
        if spec.objective == "probe" and num_classes != spec.num_classes:
            raise ValueError(f"the student's labels have {num_classes} classes, teacher "
                             f"{teacher}'s {spec.num_classes}: use the teacher's labels")  # fmt: skip
        if min(cosine_weight, smooth_l1_weight) < 0 or cosine_weight + smooth_l1_weight <= 0:
            raise ValueError("distill: cosine_weight and smooth_l1_weight must be >= 0, one > 0")
        self.__dict__["teacher"] = t  # plain attribute: never a submodule
        self.weights = (cosine_weight, smooth_l1_weight)
        self.beta, self.agree = smooth_l1_beta, agree_cosine

    def forward(self, tokens: Tensor) -> Tensor:
        return tokens  # the student's fused tokens are what is compared

    @torch.no_grad()
    def teacher_tokens(self, teacher_features: tuple[Tensor, ...]) -> Tensor:
        teacher = self.teacher.to(teacher_features[0].device)
        return teacher.fuse(list(teacher_features))[0].float()

    def distance(self, tokens: Tensor, target: Tensor) -> Tensor:
        cosine = 1.0 - F.cosine_similarity(tokens, target, dim=-1).mean()
        l1 = F.smooth_l1_loss(tokens, target, beta=self.beta)
        return self.weights[0] * cosine + self.weights[1] * l1

    def loss_weight(self, targets: Tensor) -> int:
        return len(targets)

    def loss_and_correct(self, tokens: Tensor, targets: Tensor, *teacher_features: Tensor):
        target = self.teacher_tokens(teacher_features)
        return self.distance(tokens, target), self._correct(tokens.detach(), targets, target)

    def loss(self, tokens: Tensor, targets: Tensor, *teacher_features: Tensor) -> Tensor:
        return self.loss_and_correct(tokens, targets, *teacher_features)[0]

    @torch.no_grad()
    def correct(self, tokens: Tensor, targets: Tensor, *teacher_features: Tensor) -> int:
        return self._correct(tokens, targets, self.teacher_tokens(teacher_features))

    def _correct(self, tokens: Tensor, targets: Tensor, target: Tensor) -> int:
        if self.teacher.spec.objective == "probe":
            return self.teacher.head.correct(self.teacher.head(tokens), targets)
        cosine = F.cosine_similarity(tokens, target, dim=-1).mean(-1)
        return int((cosine >= self.agree).sum())

    def deliverable(self, model: nn.Module) -> nn.Module:
        """The student as it serves: its projectors and adapter, then the teacher's own head
        (probe weights, or language model options), so `merv eval`, `merv explain` and
        `merv embed` use it as any checkpoint."""
        from ..model import MervMixer

        t = self.teacher.spec
        spec = dataclasses.replace(
            model.spec, objective=t.objective, objective_options=dict(t.objective_options),
            num_classes=t.num_classes, classes=list(t.classes),
        )  # fmt: skip
        student = MervMixer(spec)
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
        state.update({f"head.{k}": v for k, v in self.teacher.head.state_dict().items()})
        student.load_state_dict(state, strict=True)
        return student
