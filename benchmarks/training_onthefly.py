"""Benchmark (c) of `benchmarks.training_bench`: the same projectors + mixer step, fed from the
cache or by MERV's four full-size encoders computing features from decoded frames (random
weights; the cost, not the values, is measured)."""

from __future__ import annotations

import tempfile
import time
from types import SimpleNamespace

import numpy as np
import torch

BATCH, CACHED_ROWS, FLY_STEPS = 2, 64, 2


def _merv_specs():
    from encoders import get_spec
    from encoders.registry import ENCODER_SETS

    return [get_spec(name) for name in ENCODER_SETS["merv"]]


def cached_steps_per_s(specs) -> float:
    """Steps/s of the second epoch (the first pays for start-up), timed between the epoch lines
    of the trainer's log: streaming reads included, set-up and saving not."""
    from benchmarks.training_bench import train_config, write_random_store
    from mixer import train

    with tempfile.TemporaryDirectory() as tmp:
        store = f"{tmp}/merv.zarr"
        write_random_store(store, CACHED_ROWS, {s.name: s.width for s in specs})
        cfg = train_config(store, batch_size=BATCH, val_fraction=0.0, d_model=4096, epochs=2)
        cfg = cfg.replace(fusion_options={})
        ends: list[float] = []

        def log(line: str) -> None:
            if line.startswith("epoch "):
                ends.append(time.perf_counter())

        train(cfg, log=log)
        return (CACHED_ROWS // BATCH) / (ends[1] - ends[0])


def onthefly_steps_per_s(specs) -> float:
    """Decoded frames -> four encoders -> aligned features -> the same training step."""
    from benchmarks.training_bench import train_config
    from encoders import build_encoder
    from encoders.align import align_tokens
    from mixer import MervMixer, ModelSpec
    from mixer.trainer import build_optimizer

    encoders = [build_encoder(s.name, random_init=True) for s in specs]
    cfg = train_config("unused", batch_size=BATCH, d_model=4096).replace(fusion_options={})
    data = SimpleNamespace(
        encoders=[s.name for s in specs], widths=[s.width for s in specs], time_steps=16,
        grid=8, classes=["c0", "c1"],
    )  # fmt: skip
    model = MervMixer(ModelSpec.from_train_config(cfg, data))
    opt, _ = build_optimizer(model, cfg, FLY_STEPS * BATCH)
    rng = np.random.default_rng(0)
    videos = [torch.from_numpy(rng.integers(0, 256, (32, 240, 320, 3), dtype=np.uint8))]
    start = time.perf_counter()
    for _ in range(FLY_STEPS):
        feats = [align_tokens(e.encode(videos * BATCH), 16, 8).float() for e in encoders]
        out, _ = model(feats)
        loss = model.head.loss(out, torch.zeros(BATCH, dtype=torch.long))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return FLY_STEPS / (time.perf_counter() - start)


def cached_vs_onthefly() -> tuple[float, float]:
    specs = _merv_specs()
    return cached_steps_per_s(specs), onthefly_steps_per_s(specs)
