"""A student against its teacher on the held-out rows: token agreement (cosine, relative L2)
and the downstream metric, the teacher's own head fed the student's tokens instead of its own.

For a probe teacher the metric is accuracy; for another teacher (a language model) it is the
mean token cosine here, and `merv eval --checkpoint STUDENT` gives the LM loss and
multiple-choice accuracy (a student checkpoint carries its teacher's head).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch.nn import functional as F

from ..checkpoint import load_model, saved_train_config
from ..objectives import OBJECTIVES
from ..selection import select_rows
from ..steps import to_device
from ..stream import FeatureStream, StreamConfig


@torch.no_grad()
def compare_to_teacher(student: str | Path, store: str | None = None, batch_size: int = 32):
    """{"rows", "cosine", "rel_l2", "metric", "teacher_metric", "kept", "agreement"} of the
    student checkpoint folder ``student`` over its run's validation rows (every row when the
    run had none), ``store`` overriding the saved one."""
    config = saved_train_config(student, store).replace(loader_workers=0)
    model = load_model(student).eval()
    distill = OBJECTIVES.lookup("distill")(  # the teacher, frozen, as the run had it
        model.spec.d_model, model.feature_fusion.out_tokens(model.spec.n_tokens),
        model.spec.num_classes, **config.objective_options,
    )  # fmt: skip
    teacher = distill.teacher
    data = select_rows(config, log=lambda *_: None)
    which = data.val if len(data.val) else range(len(data.rows))
    rows, targets = data.part(which)
    cfg = StreamConfig(batch_size=batch_size, num_workers=0, pool_grid=config.pool_grid,
                       pool_time=config.pool_time)  # fmt: skip
    probe = teacher.spec.objective == "probe"
    sums = dict.fromkeys(("cosine", "rel_l2", "right", "teacher_right", "agree"), 0.0)
    with FeatureStream(data.store_url, data.read_encoders, rows, cfg, targets) as stream:
        for batch in stream.epoch(0):
            feats, y = to_device(batch, torch.device("cpu"))
            n = len(data.encoders)
            mine, theirs = model.fuse(feats[:n])[0], distill.teacher_tokens(tuple(feats[n:]))
            sums["cosine"] += float(F.cosine_similarity(mine, theirs, dim=-1).mean(-1).sum())
            gap = (mine - theirs).flatten(1).norm(dim=1) / theirs.flatten(1).norm(dim=1)
            sums["rel_l2"] += float(gap.sum())
            if probe:
                student_pred = teacher.head(mine).argmax(-1)
                teacher_pred = teacher.head(theirs).argmax(-1)
                sums["right"] += float((student_pred == y).sum())
                sums["teacher_right"] += float((teacher_pred == y).sum())
                sums["agree"] += float((student_pred == teacher_pred).sum())
    n = max(1, len(rows))
    out = {k: v / n for k, v in sums.items()}
    metric, teacher_metric = (out["right"], out["teacher_right"]) if probe else (out["cosine"], 1.0)
    return {
        "rows": len(rows),
        "held_out": bool(len(data.val)),
        "cosine": out["cosine"],
        "rel_l2": out["rel_l2"],
        "metric_name": "accuracy" if probe else "cosine",
        "metric": metric,
        "teacher_metric": teacher_metric,
        "kept": metric / teacher_metric if teacher_metric else 0.0,
        "agreement": out["agree"] if probe else None,
        "encoders": list(model.spec.encoders),
        "teacher_encoders": list(teacher.spec.encoders),
    }
