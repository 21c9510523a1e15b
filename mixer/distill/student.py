"""A student's training run: the teacher's rows, split and pooling, the student's encoders, an
adapter, and the ``distill`` objective (``merv distill``)."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path
from typing import Any

from ..checkpoint import read_spec, saved_train_config
from ..config import TrainConfig
from .objective import teacher_file

ADAPTERS = {"mlp": "mlp_adapter", "temporal": "temporal_adapter"}
# What a student takes from its teacher's run, so both are scored on the same held-out rows.
SAME_AS_TEACHER = ("labels", "pool_grid", "pool_time", "val_fraction", "split_file",
                   "split_column", "seed", "device", "precision")  # fmt: skip


def student_config(
    teacher: str,
    encoders: list[str],
    store: str | None = None,
    adapter: str = "mlp",
    adapter_options: dict[str, Any] | None = None,
    loss: dict[str, float] | None = None,
    **train: Any,
) -> TrainConfig:
    """The run that distils ``teacher`` into ``encoders`` + an ``adapter`` (mlp | temporal).

    ``store``: the teacher's store if None; ``loss``: the distill objective's weights
    (cosine_weight, smooth_l1_weight, smooth_l1_beta); ``train``: any other TrainConfig field
    (epochs, lr, out, ...). Rows are those ok for the teacher's and the student's encoders, split
    as the teacher's run split them.
    """
    if adapter not in ADAPTERS:
        raise ValueError(f"adapter {adapter!r}: choose one of {', '.join(ADAPTERS)}")
    path = teacher_file(teacher)
    spec, taught = read_spec(path), saved_train_config(path, store)
    fusion_options = dict(adapter_options or {})
    if adapter == "temporal":
        fusion_options.setdefault("time_steps", spec.time_steps)
    fields = {k: getattr(taught, k) for k in SAME_AS_TEACHER}
    fields.update(train)
    return TrainConfig(
        store=store or taught.store,
        encoders=list(encoders),
        row_encoders=list(dict.fromkeys([*spec.encoders, *(taught.row_encoders or [])])),
        projector="linear",
        fusion=ADAPTERS[adapter],
        fusion_options=fusion_options,
        objective="distill",
        objective_options={"teacher": str(path.resolve()), **(loss or {})},
        d_model=spec.d_model,
        **fields,
    )


def encoder_subsets(encoders: list[str]) -> list[list[str]]:
    """Every non-empty subset of ``encoders``, smallest first, in their order."""
    return [list(c) for k in range(1, len(encoders) + 1) for c in combinations(encoders, k)]


def student_name(encoders: list[str], adapter: str) -> str:
    return f"{'+'.join(encoders)}-{adapter}"


def default_out(teacher: str) -> Path:
    return teacher_file(teacher).parent.parent / "students"


def scored_like_teacher(config: TrainConfig, store: str | None = None) -> TrainConfig:
    """The run whose held-out rows, split and text score a checkpoint: a student's teacher's
    (a distillation reads no text; its rows and split are its teacher's), any other run's own."""
    if config.objective != "distill":
        return config
    return saved_train_config(teacher_file(config.objective_options["teacher"]), store)
