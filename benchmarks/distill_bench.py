"""Cheap inference: a SigLIP-only student against its four-encoder teacher, served as `merv
embed` serves a model (decode once, then the encoder actor: only the model's encoders, then
the model stage), with MERV's full-size encoder architectures at random weights (the time does
not depend on their values).

Both models are built at MERV's sizes (d_model 4096; the teacher: LanguageBind, DINOv2, ViViT
and SigLIP, cross-attention mixer, a probe; the student: SigLIP, an MLP adapter, the teacher's
probe), saved as checkpoints whose feature recipes name the full-size specs, and planned by
`jobs.embed.embed_plan` as `merv embed` plans them. Building an actor (random initialisation)
happens once per job and is not timed; decoding and the actor's call on the same videos are.

`python -m benchmarks.distill_bench [--videos N]`
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

TEACHER = ["languagebind", "dinov2", "vivit", "siglip"]
STUDENT = ["siglip"]
CLIPS = ["mmaction2_test.mp4", "videollava_sample_demo_1.mp4", "mmaction2_part_0.mp4"]
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus" / "real"


def _checkpoint(folder: Path, encoders: list[str], fusion: str) -> str:
    from encoders import get_spec
    from mixer import save_model
    from mixer.model import MervMixer, ModelSpec

    specs = [get_spec(e) for e in encoders]
    classes = [f"class{i}" for i in range(10)]
    spec = ModelSpec(encoders=encoders, widths=[s.width for s in specs], time_steps=16,
                     tokens_per_step=64, num_classes=10, d_model=4096, fusion=fusion,
                     classes=classes)  # fmt: skip
    recipe = {"store": "(benchmark)", "time_steps": 16, "grid": 8, "pool_grid": None,
              "pool_time": None, "encoders": {s.name: s.to_dict() for s in specs}}  # fmt: skip
    path = folder / "-".join(encoders) / "model.safetensors"
    save_model(MervMixer(spec), path, extra={"features": json.dumps(recipe)})
    return str(path)


def _decoded(n: int) -> tuple[list[np.ndarray], float]:
    from pipeline.decode import decode_video

    start = time.perf_counter()
    frames = [decode_video(str(CORPUS / CLIPS[i % len(CLIPS)])).frames for i in range(n)]
    return frames, time.perf_counter() - start


def _serve(model: str, videos: list[np.ndarray]) -> tuple[float, float, list[str]]:
    """(build seconds, seconds of the actor's call on ``videos``, encoders built)."""
    from jobs.embed import embed_plan
    from jobs.workers import EncoderActor

    plan = embed_plan(model)
    start = time.perf_counter()
    actor = EncoderActor([s.to_dict() for s in plan.encoder_specs], {}, "fp32", False,
                         os.cpu_count() or 1, plan.time_steps, plan.grid, batch_size=len(videos),
                         random_weights=True, model=plan.actor)  # fmt: skip
    built = time.perf_counter() - start
    n = len(videos)
    frames = np.empty(n, dtype=object)
    frames[:] = videos
    batch = {"frames": frames, "status": np.asarray(["ok"] * n), "error": np.asarray([""] * n),
             "encoders": np.asarray(["fused"] * n), "row": np.arange(n),
             "extra": np.asarray(["{}"] * n)}  # fmt: skip
    start = time.perf_counter()
    out = actor(batch)
    spent = time.perf_counter() - start
    assert list(out["status"]) == ["ok"] * n and out["feat:fused"].shape[0] == n
    return built, spent, list(actor.encoders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2, help="videos served by each model (2)")
    args = parser.parse_args(argv)
    videos, decode_s = _decoded(args.videos)
    print(f"{args.videos} real clips decoded once in {decode_s:.2f}s (32 frames each); "
          "full-size encoders at random weights, fp32 CPU, d_model 4096")  # fmt: skip
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, encoders, fusion in (("teacher", TEACHER, "cross_attention"),
                                       ("student", STUDENT, "mlp_adapter")):  # fmt: skip
            model = _checkpoint(Path(tmp), encoders, fusion)
            built, spent, ran = _serve(model, videos)
            rates[name] = args.videos / (decode_s + spent)
            print(f"  {name:<8} encoders {'+'.join(ran):<34} build {built:5.1f}s, decode + "
                  f"encode + model {decode_s + spent:6.1f}s: {rates[name]:.3f} videos/s",
                  flush=True)  # fmt: skip
    ratio = rates["student"] / rates["teacher"]
    print(f"student / teacher inference videos/s: {ratio:.2f} (target >= 3)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
