"""`merv eval` and `merv generate` for lm-objective checkpoints, on the cached features.

- Held-out loss: the mean loss over every supervised token of the held-out split (the val rows
  of the checkpoint's own train config, or a split given now), and its perplexity.
- Multiple choice (MVBench / Perception Test style): each option scored by the language
  model's log-likelihood of it as the answer; the likeliest is the prediction.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable

import numpy as np
import torch

from ..checkpoint import load_model
from ..config import TrainConfig
from .inference import choose_options, generate
from .prompts import IGNORE


def load_lm_checkpoint(checkpoint: str):
    model = load_model(checkpoint)
    if model.spec.objective != "lm":
        raise ValueError(
            f"{checkpoint} was trained with objective {model.spec.objective!r}: merv eval and "
            "generate need an lm checkpoint (a probe's accuracy is in its results.json)"
        )
    return model.eval()


def video_features(model, store_url: str, video_ids: list[str]) -> list[torch.Tensor]:
    """The model's inputs for ``video_ids``: their cached features, pooled as it was trained."""
    from pipeline.store import FeatureStore

    from ..readers import read_window

    st = FeatureStore.open(store_url)
    index = {v: i for i, v in enumerate(st.video_ids)}
    missing = [v for v in video_ids if v not in index]
    if missing:
        raise ValueError(f"video(s) {missing[:5]} are not in store {store_url}")
    rows = np.array([index[v] for v in video_ids], dtype=np.int64)
    spec = model.spec
    grid = int(math.isqrt(spec.tokens_per_step))
    feats = read_window(rows, store_url, spec.encoders, grid, spec.time_steps)
    return [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in feats]


def held_out_loss(model, config: TrainConfig, log: Callable[[str], None]) -> dict:
    """Token-mean loss and perplexity over the held-out rows of ``config``."""
    from ..selection import select_rows

    data = select_rows(config, log)
    which = data.val if len(data.val) else np.arange(len(data.rows))
    from pipeline.store import FeatureStore

    st = FeatureStore.open(data.store_url)
    vids = [st.video_ids[r] for r in data.rows[which]]
    convs = [data.texts[i] for i in which]
    head, total, tokens = model.head, 0.0, 0
    head.attach(convs)
    with torch.no_grad():
        for lo in range(0, len(vids), 8):
            idx = torch.arange(lo, min(lo + 8, len(vids)))
            visual, _ = model.fuse(video_features(model, data.store_url, vids[lo : lo + 8]))
            n = sum(sum(1 for lab in head.samples[int(i)][1][1:] if lab != IGNORE) for i in idx)
            total += float(head.loss(visual, idx)) * n
            tokens += n
    loss = total / max(1, tokens)
    return {"videos": len(vids), "tokens": tokens, "loss": loss, "perplexity": math.exp(loss)}


def read_mcq(path: str) -> list[dict]:
    """Questions: video_id, options (a list, or text split on "|"), answer (an option's text
    or its 0-based index), question (optional)."""
    from ..dataset import read_table

    table = read_table(path, ("video_id", "options", "answer"), "multiple-choice file")
    out = []
    for i, r in enumerate(table.to_pylist()):
        options = r["options"]
        if isinstance(options, str):
            options = json.loads(options) if options.startswith("[") else options.split("|")
        answer = r["answer"]
        if isinstance(answer, str) and not answer.isdigit():
            if answer not in options:
                raise ValueError(f"{path} row {i}: answer {answer!r} is not one of {options}")
            answer = options.index(answer)
        out.append({"video_id": str(r["video_id"]), "question": r.get("question"),
                    "options": [str(o) for o in options], "answer": int(answer)})  # fmt: skip
    return out


def multiple_choice(model, store_url: str, questions: list[dict]) -> dict:
    correct = 0
    for q in questions:
        feats = video_features(model, store_url, [q["video_id"]])
        correct += choose_options(model, feats, q["question"], q["options"]) == q["answer"]
    chance = float(np.mean([1 / len(q["options"]) for q in questions])) if questions else 0.0
    return {"questions": len(questions), "accuracy": correct / max(1, len(questions)),
            "chance": chance}  # fmt: skip


def answer(model, store_url: str, video_id: str, question: str | None) -> str:
    return generate(model, video_features(model, store_url, [video_id]), question)
