"""Per-video mixer weights of a trained model: which encoder the mixer trusted, for which video.

The model's saved train config gives the rows, labels and pooling it was trained with; the
weights are those of the model's own forward (``MervMixer.fuse``) over the chosen rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..checkpoint import load_model, saved_train_config


@dataclass
class VideoWeights:
    encoders: list[str]
    video_ids: list[str]
    rows: np.ndarray
    labels: list[str]  # the class of each video ("" for objectives without classes)
    weights: np.ndarray  # [videos, encoders], each row sums to 1


def video_weights(run: str | Path, store: str | None = None, which: str = "val") -> VideoWeights:
    """Mixer weights of every video of ``which`` (val: the held-out split, else all rows).
    Raises ValueError for a fusion without per-video weights."""
    from ..selection import select_rows
    from ..stream import FeatureStream, StreamConfig

    model = load_model(run).eval()
    if model.spec.fusion not in ("cross_attention", "static_weights"):
        raise ValueError(
            f"{run}: fusion {model.spec.fusion!r} has no per-encoder weights to explain "
            "(cross_attention and static_weights have)"
        )
    config = saved_train_config(run, store)
    data = select_rows(config, log=lambda *_: None)
    part = data.val if which == "val" and len(data.val) else np.arange(len(data.rows))
    rows, targets = data.part(part)
    cfg = StreamConfig(64, num_workers=0, pool_grid=config.pool_grid, pool_time=config.pool_time)
    got_rows, got_w = [], []
    with (
        FeatureStream(data.store_url, data.encoders, rows, cfg, targets) as stream,
        torch.no_grad(),
    ):
        for batch in stream.epoch(0):
            feats = [torch.from_numpy(np.asarray(f, dtype=np.float32)) for f in batch.features]
            _, w = model.fuse(feats)
            got_rows.append(batch.rows)
            got_w.append(w.float().numpy())
    order = np.argsort(np.concatenate(got_rows), kind="stable")
    all_rows, weights = np.concatenate(got_rows)[order], np.concatenate(got_w)[order]
    from pipeline.store import FeatureStore

    ids = FeatureStore.open(data.store_url).video_ids
    index = np.searchsorted(data.rows, all_rows)
    labels = [data.classes[int(data.targets[i])] if data.classes else "" for i in index]
    return VideoWeights(data.encoders, [ids[r] for r in all_rows], all_rows, labels, weights)
