"""Extraction benchmarks, each a ratio against a baseline measured in the same run.

(a) one shared decode for all four MERV encoders / one decode per encoder   (target <= 0.4)
(b) end-to-end extraction throughput / the bound decode-alone d and encode-alone e allow:
    1 / (1/d + 1/e) on CPU, where both share the cores                      (target >= 0.85);
    on a GPU machine also min(d, e) for the full-size MERV set at bf16 (random weights)
(c) decode throughput, 2 workers / 1 worker                                 (target >= 1.7)
(d) planning a corpus of 1,000,000 video ids: seconds and driver peak RSS  (< 30 s, < 1 GB)

`python -m benchmarks.extraction_bench [--videos N]`; `make bench` runs it with the others.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from pipeline.sampling import sample_indices
from pipeline.synthetic import ClipSpec, render_clip, write_video

MERV_FRAMES = {"languagebind": 16, "dinov2": 16, "vivit": 32, "siglip": 16}


def make_clips(
    folder: Path, n: int, size: tuple[int, int] = (240, 320), frames: int = 120
) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        label = ("red_left", "red_right", "blue_left", "blue_right")[i % 4]
        clip = render_clip(
            ClipSpec(label, n_frames=frames, size=max(size), shape_size=40, y=20 + i % 100, seed=i)
        )[:, : size[0], : size[1]]
        path = folder / f"clip_{i:04d}.mp4"
        write_video(str(path), np.ascontiguousarray(clip), fps=25)
        paths.append(str(path))
    return paths


def _decord_frames(path: str, indices: np.ndarray) -> np.ndarray:
    import decord

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=1)
    return reader.get_batch(list(indices)).asnumpy()


def _decode_shared(path: str) -> int:
    import decord

    n = len(decord.VideoReader(path, num_threads=1))
    return int(_decord_frames(path, sample_indices(n)).shape[0])


def _decode_per_encoder(path: str) -> int:
    import decord

    n = len(decord.VideoReader(path, num_threads=1))
    sampled = sample_indices(n)
    total = 0
    for frames in MERV_FRAMES.values():  # each encoder's own pipeline decodes its own frames
        total += _decord_frames(path, sampled[:: 32 // frames]).shape[0]
    return total


def bench_shared_decode(paths: list[str]) -> dict:
    for p in paths[:2]:
        _decode_shared(p)  # warm the page cache and the library
    start = time.perf_counter()
    for p in paths:
        _decode_shared(p)
    shared = time.perf_counter() - start
    start = time.perf_counter()
    for p in paths:
        _decode_per_encoder(p)
    per_encoder = time.perf_counter() - start
    return {"shared_s": shared, "per_encoder_s": per_encoder, "ratio": shared / per_encoder}


def bench_decode_scaling(paths: list[str]) -> dict:
    out = {}
    all_cores = max(1, (os.cpu_count() or 2) - 1)  # one core stays with the driver / encoder
    for workers in sorted({1, 2, all_cores}):
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_decode_shared, paths[:workers]))  # start and warm the workers
            start = time.perf_counter()
            list(pool.map(_decode_shared, paths, chunksize=1))
            out[workers] = len(paths) / (time.perf_counter() - start)
    return {
        "videos_per_s_1": out[1],
        "videos_per_s_2": out[2],
        "ratio": out[2] / out[1],
        "videos_per_s_all": out[all_cores],
    }


def _encode_rate(models, videos, batch_size: int, threads: int) -> float:
    import torch

    from encoders.align import align_tokens

    torch.set_num_threads(threads)
    start = time.perf_counter()
    for lo in range(0, len(videos), batch_size):
        chunk = [torch.from_numpy(v) for v in videos[lo : lo + batch_size]]
        for model in models:
            align_tokens(model.encode(chunk, pad_to=batch_size)).to(torch.float16)
    return len(videos) / (time.perf_counter() - start)


def _run_job(cfg) -> tuple[float, object]:
    """Run the extraction job into a temporary store; steady-state videos/s and its telemetry.

    Steady state: from the first batch out to the last, so Ray start-up and model loading
    (reported separately as the whole job's rate) do not count.
    """
    import dataclasses

    from jobs.extract import run_extract

    marks = []
    with tempfile.TemporaryDirectory() as tmp:
        telemetry = run_extract(
            dataclasses.replace(cfg, store=f"{tmp}/s.zarr"),
            echo=lambda _: None,
            on_batch=lambda t: marks.append((time.perf_counter(), t.processed)),
        )
    (t0, n0), (t1, n1) = marks[0], marks[-1]
    return (n1 - n0) / (t1 - t0), telemetry


def bench_pipeline(
    folder: Path, paths: list[str], encoders: str, batch_size: int, d_all_cores: float
) -> dict:
    """d and e alone: with one core each (as the job's workers get them) and with every core."""
    import torch

    from encoders import build_encoder, resolve_encoder_set
    from jobs.config import ExtractConfig
    from pipeline.decode import decode_video

    torch.set_num_threads(1)
    start = time.perf_counter()
    videos = [decode_video(p).frames for p in paths]
    d = len(paths) / (time.perf_counter() - start)
    models = [build_encoder(n) for n in resolve_encoder_set(encoders)]
    e = _encode_rate(models, videos, batch_size, threads=1)
    e_all = _encode_rate(models, videos, batch_size, threads=os.cpu_count() or 1)
    torch.set_num_threads(1)
    bound = 1 / (1 / d + 1 / e)
    strict = 1 / (1 / d_all_cores + 1 / e_all)
    # On a CPU-only machine the encoder actor reserves one CPU but runs a thread per core, so it
    # also uses what the light decode leaves idle (the documented CPU setting).
    steady, telemetry = _run_job(
        ExtractConfig(
            input=str(folder),
            encoders=encoders,
            batch_size=batch_size,
            progress=False,
            encoder_threads=os.cpu_count() or 1,
        )
    )
    return {
        "decode_alone_d": d,
        "encode_alone_e": e,
        "bound": bound,
        "strict_bound": strict,
        "d_all": d_all_cores,
        "e_all": e_all,
        "strict_ratio": steady / strict,
        "end_to_end_incl_startup": telemetry.videos_per_s,
        "end_to_end_steady": steady,
        "encode_share": (1 / e) / (1 / d + 1 / e),
        "ratio": steady / bound,
        "encoder_idle_s": telemetry.encoder_idle_s,
    }


def bench_pipeline_gpu(folder: Path, paths: list[str], batch_size: int, d_all: float) -> dict:
    """On a GPU machine: the full-size MERV set at bf16 (random weights) against min(d, e)."""
    import torch

    from encoders import ENCODER_SETS, build_encoder
    from jobs.config import ExtractConfig
    from pipeline.decode import decode_video

    videos = [decode_video(p).frames for p in paths[: 4 * batch_size]]
    models = [
        build_encoder(n, device="cuda", dtype=torch.bfloat16, random_init=True)
        for n in ENCODER_SETS["merv"]
    ]
    _encode_rate(models, videos[:batch_size], batch_size, threads=1)  # warm-up
    torch.cuda.synchronize()
    e = _encode_rate(models, videos, batch_size, threads=1)
    del models
    torch.cuda.empty_cache()
    steady, telemetry = _run_job(
        ExtractConfig(
            input=str(folder),
            encoders="merv",
            batch_size=batch_size,
            dtype="bf16",
            encoder_gpus=1.0,
            random_weights=True,
            progress=False,
        )
    )
    return {
        "d": d_all,
        "e": e,
        "bound": min(d_all, e),
        "steady": steady,
        "ratio": steady / min(d_all, e),
        "with_startup": telemetry.videos_per_s,
    }


PLAN_SCRIPT = r"""
import json, sys, tempfile, time
import numpy as np
start = time.perf_counter()
from jobs.planning import open_or_create_store, plan_work
from pipeline.rows import work_table
from encoders import get_spec, ENCODER_SETS
from pipeline.sources import VideoItem
n = int(sys.argv[1])
rng = np.random.default_rng(0)
ids = [f"video_{i:07d}" for i in rng.permutation(n)]
items = [VideoItem(v, f"s3://bucket/{v}.mp4") for v in ids]
specs = [get_spec(s) for s in ENCODER_SETS["merv"]]
with tempfile.TemporaryDirectory() as tmp:
    store, _, _ = open_or_create_store(f"{tmp}/s.zarr", items, specs, 32, 16, 8, 32)
    plan, work, missing = plan_work(store, items, [s.name for s in specs])
    todo = work_table(work, plan.video_ids, items)
    assert todo.num_rows == n and not missing
seconds = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that spawned us.
hwm_kb = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": seconds, "peak_rss_mb": hwm_kb / 1024}))
"""


def bench_planning(n: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", PLAN_SCRIPT, str(n)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=48, help="clips for (a)-(c)")
    parser.add_argument("--plan-videos", type=int, default=1_000_000)
    parser.add_argument("--encoders", default="tiny")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "clips"
        paths = make_clips(folder, args.videos)
        a = bench_shared_decode(paths)
        print(
            f"(a) shared decode / per-encoder decode: {a['shared_s']:.2f}s / "
            f"{a['per_encoder_s']:.2f}s = {a['ratio']:.3f}  (target <= 0.4, limit 0.25)"
        )
        c = bench_decode_scaling(paths)
        print(
            f"(c) decode, 2 workers / 1 worker: {c['videos_per_s_2']:.1f} / "
            f"{c['videos_per_s_1']:.1f} videos/s = {c['ratio']:.2f}  (target >= 1.7)"
        )
        import torch

        if torch.cuda.is_available():
            g = bench_pipeline_gpu(folder, paths, 8, c["videos_per_s_all"])
            print(
                f"(b) GPU, 4 full-size MERV encoders at bf16: end-to-end {g['steady']:.1f} "
                f"videos/s / min(d={g['d']:.1f}, e={g['e']:.1f}) = {g['ratio']:.2f}  "
                f"(target >= 0.85); with Ray start-up {g['with_startup']:.1f} videos/s"
            )
        b = bench_pipeline(folder, paths, args.encoders, 4, c["videos_per_s_2"])
        print(
            f"(b) end-to-end / bound 1/(1/d+1/e), job with encoder_threads={os.cpu_count()}: "
            f"steady {b['end_to_end_steady']:.2f} videos/s"
            f" (with Ray start-up {b['end_to_end_incl_startup']:.2f}); encode share of the "
            f"work {b['encode_share']:.0%}; encoder idle {b['encoder_idle_s']:.1f}s"
        )
        print(
            f"    d, e on every core ({b['d_all']:.1f}, {b['e_all']:.2f}/s): bound "
            f"{b['strict_bound']:.2f} -> ratio {b['strict_ratio']:.2f}  (target >= 0.85)"
        )
        print(
            f"    d, e on one core each, as the job's workers get them ({b['decode_alone_d']:.1f},"
            f" {b['encode_alone_e']:.2f}/s): bound {b['bound']:.2f} -> ratio {b['ratio']:.2f}"
        )
    d = bench_planning(args.plan_videos)
    print(
        f"(d) planning {args.plan_videos:,} videos: {d['seconds']:.1f}s, driver peak RSS "
        f"{d['peak_rss_mb']:.0f} MB  (targets < 30 s, < 1024 MB)"
    )
    return 0


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
