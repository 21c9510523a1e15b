"""Decoding speed on HD footage: exact vs fast mode (and the decoder chain before decode modes).

For each kind of clip, measured in one run, with one decode process per core as Ray runs its
decode tasks:

- videos/s of ``before`` (decord first, FFmpeg's own threads, full resolution: the chain before
  decode modes), ``exact`` (GOP-aware seeking, one thread, coded size) and ``fast`` (the same,
  scaled in the decoder to 448 on the short side: 2x the 224 input of MERV's encoders), and
  fast / exact (target >= 4 on 1080p);
- frames decoded per sampled frame, against decoding every frame up to the last sample;
- bytes per video in Ray's object store: the decode task's output block for one video (Ray
  Data's own size of it), the largest over the clips;
- then the extraction job itself on the 1080p clips (local Ray, the tiny encoders, whose
  preprocessing is the full-size encoders' own): steady-state videos/s and the encoder actors'
  preprocessing seconds per video, exact vs fast.

`python -m benchmarks.decode_bench [--quick]`; `make bench` runs it with the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from benchmarks.decode_clips import HdClip, write_hd_clip

CLIP_DIR = Path("bench_out") / "decode_clips"
KINDS = {  # kind: (clip, how many)
    "1080p 10s": (HdClip("hd1080", 1920, 1080, 10), 4),
    # the phone clip: 41 frames, so nearly every frame decoded is a sampled one
    "1080p 41 frames": (HdClip("hd1080short", 1920, 1080, 41 / 30), 4),
    "4K 10s": (HdClip("uhd4k", 3840, 2160, 10), 2),
    "720p 5min g250": (HdClip("long720", 1280, 720, 300, preset="ultrafast", crf=23), 2),
}
MODES = ("before", "exact", "fast")
FAST_SHORT_SIDE = 448


def _how(mode: str):
    from pipeline.decode_settings import DecodeSettings

    if mode == "before":  # decord with its own threads first, as the chain was
        return DecodeSettings(threads=0), ("decord", "decord-1thread", "pyav")
    if mode == "exact":
        return DecodeSettings(), None
    return DecodeSettings("fast", short_side=FAST_SHORT_SIDE), None


def _decode_one(job: tuple[str, str]) -> dict:
    from pipeline.decode import DECODERS, decode_video

    path, mode = job
    settings, decoders = _how(mode)
    began = time.perf_counter()
    video = decode_video(path, settings=settings, decoders=decoders or DECODERS)
    return {
        "s": time.perf_counter() - began,
        "decoded": video.frames_decoded,
        "everything": int(video.indices.max()) + 1,
        "keyframe_interval": video.keyframe_interval,
        "decoder": video.decoder,
    }


def _block_bytes(path: str, mode: str) -> int:
    """Ray Data's size of the decode task's output block for this one video."""
    from types import SimpleNamespace

    from ray.data.block import BlockAccessor

    from pipeline.decode_rows import decode_rows
    from pipeline.rows import work_table
    from pipeline.sources import list_videos

    items = list_videos(path)
    work = SimpleNamespace(rows=[0], encoders_by_row={0: ("e",)})
    table = work_table([work], [items[0].video_id], items)
    batch = {k: np.asarray(v) for k, v in table.to_pydict().items()}
    out = decode_rows(batch, 32, _how(mode)[0])
    return int(BlockAccessor.for_block(BlockAccessor.batch_to_block(out)).size_bytes())


def _measure(paths: list[str], mode: str, workers: int) -> dict:
    with ProcessPoolExecutor(workers) as pool:
        list(pool.map(_decode_one, [(paths[0], mode)] * workers))  # imports, warm caches
        began = time.perf_counter()
        runs = list(pool.map(_decode_one, [(p, mode) for p in paths]))
        wall = time.perf_counter() - began
    counted = [r["decoded"] for r in runs if r["decoded"] is not None]
    return {
        "videos_per_s": len(paths) / wall,
        "decoded_per_sample": float(np.mean(counted)) / 32 if counted else None,
        "everything_per_sample": float(np.mean([r["everything"] for r in runs])) / 32,
        "keyframe_interval": runs[0]["keyframe_interval"],
        "decoder": runs[0]["decoder"],
        "block_bytes": max(_block_bytes(p, mode) for p in paths),
    }


def _row(kind: str, mode: str, m: dict) -> str:
    per = f"{m['decoded_per_sample']:.1f}" if m["decoded_per_sample"] is not None else "n/a"
    return (
        f"{kind:<16}{mode:<8}{m['videos_per_s']:>9.3f}{per:>10}{m['everything_per_sample']:>9.1f}"
        f"{m['block_bytes'] / 2**20:>11.1f}  {m['decoder']}"
    )


def _whole_job(cfg):
    import tempfile

    from jobs.extract import run_extract

    with tempfile.TemporaryDirectory() as tmp:
        return run_extract(dataclasses.replace(cfg, store=f"{tmp}/s.zarr"), echo=lambda _: None)


def _jobs(paths: list[str]) -> dict:
    """The extraction job on ``paths`` in each mode: videos/s and preprocessing s/video."""
    import tempfile

    from benchmarks.extraction_bench import _run_job
    from jobs.config import ExtractConfig

    out = {}
    print("\nextraction job on the 1080p 10s clips (local Ray, tiny encoders, 1 video/batch):")
    with tempfile.TemporaryDirectory() as folder:
        for p in paths:
            os.symlink(os.path.abspath(p), os.path.join(folder, os.path.basename(p)))
        for mode in ("exact", "fast"):
            cfg = ExtractConfig(input=folder, encoders="tiny", decode_mode=mode, batch_size=1,
                                progress=False)  # fmt: skip
            rate, telemetry = _run_job(cfg) if len(paths) > 1 else (0.0, None)
            if telemetry is None:  # one video: no steady state, the whole job's rate
                telemetry = _whole_job(cfg)
                rate = telemetry.videos_per_s
            spent = telemetry.summary()["encoders"].values()
            pre = sum(e["preprocess_s"] for e in spent) / max(telemetry.processed, 1)
            out[("job", mode)] = {"videos_per_s": rate, "preprocess_s_per_video": pre}
            print(f"  {mode:<6}{rate:>8.3f} videos/s, encoder preprocessing {pre:.2f} s/video")
    ratio = out[("job", "fast")]["videos_per_s"] / out[("job", "exact")]["videos_per_s"]
    print(f"  fast / exact = {ratio:.2f}x")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one clip of each kind")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    workers = os.cpu_count() or 1
    began = time.perf_counter()
    clips = {
        kind: [
            write_hd_clip(dataclasses.replace(clip, name=f"{clip.name}_{i}"), CLIP_DIR, seed=i)
            for i in range(1 if args.quick else n)
        ]
        for kind, (clip, n) in KINDS.items()
    }
    print(f"clips ready in {time.perf_counter() - began:.0f}s (kept in {CLIP_DIR}); "
          f"{workers} decode processes")  # fmt: skip
    print(f"{'clip':<16}{'mode':<8}{'videos/s':>9}{'dec/samp':>10}{'all/samp':>9}"
          f"{'MiB/video':>11}  decoder")  # fmt: skip
    results: dict = {}
    for kind, paths in clips.items():
        for mode in MODES:
            results[(kind, mode)] = m = _measure(paths, mode, workers)
            print(_row(kind, mode, m), flush=True)
        fast, exact, before = (
            results[(kind, x)]["videos_per_s"] for x in ("fast", "exact", "before")
        )
        print(f"{kind:<16}fast / exact = {fast / exact:.2f}x, exact / before = "
              f"{exact / before:.2f}x, fast / before = {fast / before:.2f}x")  # fmt: skip
    results.update(_jobs(clips["1080p 10s"]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({f"{k} | {m}": v for (k, m), v in results.items()}, f, indent=1)


if __name__ == "__main__":
    main()
