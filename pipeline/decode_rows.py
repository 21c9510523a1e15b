"""Decode a batch of work rows (the body of the Ray decode task, testable without Ray).

A work row carries ``row, video_id, source, start, end`` (NaN = no bound) and ``extra`` (JSON of
the input's own columns plus the listing's hints, see ``pipeline.corpus.HINTS_KEY``). Nothing
raises out of here: every row comes back ``ok`` with its frames or ``failed`` with a one-line
reason whose class token comes first (``pipeline.failures``). The hints are consumed here and
replaced in ``extra`` by decode facts the manifest should keep (clip bounds, source size,
rotation, salvage or resize notes).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from pipeline import failures as F
from pipeline.corpus import split_hints
from pipeline.decode import DecodedVideo, decode_video
from pipeline.failures import DecodeError, one_line
from pipeline.rows import DECODE_COLUMNS


def _bound(batch: dict[str, np.ndarray], key: str, i: int) -> float | None:
    if key not in batch:
        return None
    value = batch[key][i]
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def decode_facts(video: DecodedVideo) -> dict[str, Any]:
    """Per-video decode facts written to the manifest beside the core columns."""
    return {
        "source_height": video.source_height,
        "source_width": video.source_width,
        "rotation": video.rotation,
        "decode_note": video.note,
    }


def decode_rows(batch: dict[str, np.ndarray], num_frames: int) -> dict[str, np.ndarray]:
    n = len(batch["row"])
    out: dict[str, list] = {
        k: [] for k in ("frames", "status", "error", *DECODE_COLUMNS, "decode_s", "extra")
    }
    empty = (
        0,
        0.0,
        0.0,
        0,
        0,
        "",
        np.zeros(num_frames, np.int64),
        np.zeros(num_frames, np.float64),
    )
    for i in range(n):
        began = time.perf_counter()
        extra, hints = split_hints(str(batch["extra"][i]) if "extra" in batch else None)
        start, end = _bound(batch, "start", i), _bound(batch, "end", i)
        if start is not None or end is not None:
            extra.update({"clip_start": start, "clip_end": end})
        frames, status, error, meta = np.zeros((0, 0, 0, 3), np.uint8), "failed", "", empty
        if hints.get("error"):  # decided at listing time: duplicate or invalid id, bad bounds
            error = one_line(hints["error"], 500)
        else:
            try:
                video = decode_video(
                    str(batch["source"][i]),
                    num_frames,
                    start=start,
                    end=end,
                    storage_options=hints.get("storage_options"),
                    member=hints.get("member"),
                )
                frames, status = video.frames, "ok"
                meta = (
                    video.n_frames,
                    video.fps,
                    video.duration,
                    video.height,
                    video.width,
                    video.backend,
                    video.indices,
                    video.timestamps,
                )
                extra.update({k: v for k, v in decode_facts(video).items() if v is not None})
            except DecodeError as err:
                error = one_line(err, 500)
            except Exception as err:  # noqa: BLE001 - recorded in the manifest, job goes on
                error = one_line(f"{F.UNDECODABLE}: unexpected {type(err).__name__}: {err}", 500)
        out["frames"].append(frames)
        out["status"].append(status)
        out["error"].append(error)
        for key, value in zip(DECODE_COLUMNS, meta, strict=True):
            out[key].append(value)
        out["decode_s"].append(time.perf_counter() - began)
        out["extra"].append(json.dumps(extra, sort_keys=True, default=str))
    result = dict(batch)
    frames_col = np.empty(n, dtype=object)
    frames_col[:] = out.pop("frames")
    result["frames"] = frames_col
    for key, values in out.items():
        stacked = key in ("sampled_indices", "timestamps")
        result[key] = np.stack(values) if stacked else np.asarray(values)
    return result
