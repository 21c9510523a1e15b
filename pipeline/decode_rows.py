"""Decode a batch of work rows (the body of the Ray decode task, testable without Ray).

A work row (``pipeline.rows.WORK_SCHEMA``) carries ``row, video_id, source, start, end`` (NaN =
no bound), how the source's bytes are reached (``source_kind``, a tar member's byte range,
fsspec ``storage_options``), a failure decided at listing time (``listing_error``) and ``extra``
(JSON of the input's own columns). Nothing raises out of here: every row comes back ``ok`` with
its frames or ``failed`` with a one-line reason whose class token comes first
(``pipeline.failures``). The listing columns are consumed here, not passed on (fsspec options
may hold credentials); ``extra`` gains the decode facts the manifest should keep (clip bounds,
source size, rotation, salvage or resize notes).
"""

from __future__ import annotations

import json
import math
import time
from typing import Any

import numpy as np

from pipeline import failures
from pipeline.decode import DecodedVideo, decode_video
from pipeline.decode_settings import DecodeSettings
from pipeline.failures import DecodeError, one_line
from pipeline.faults import fault_point
from pipeline.rows import (
    CLIP_COLUMNS,
    DECODE_COLUMNS,
    DECODE_FACT_COLUMNS,
    FAILED,
    LISTING_COLUMNS,
    OK,
)
from pipeline.sources.item import TAR_MEMBER, TarMember


def _bound(batch: dict[str, np.ndarray], key: str, i: int) -> float | None:
    if key not in batch:
        return None
    value = batch[key][i]
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value


def _member(batch: dict[str, np.ndarray], i: int) -> TarMember | None:
    if str(batch["source_kind"][i]) != TAR_MEMBER:
        return None
    return TarMember(
        str(batch["member_shard"][i]), int(batch["member_offset"][i]), int(batch["member_size"][i])
    )


def decode_facts(video: DecodedVideo) -> dict[str, Any]:
    """Per-video decode facts written to the manifest beside the core columns."""
    values = (
        video.source_height,
        video.source_width,
        video.rotation,
        video.note,
        video.keyframe_interval,
        video.frames_decoded,
    )
    return dict(zip(DECODE_FACT_COLUMNS, values, strict=True))


def _decode_row(
    batch: dict[str, np.ndarray],
    i: int,
    num_frames: int,
    extra: dict[str, Any],
    settings: DecodeSettings | None = None,
) -> tuple[DecodedVideo | None, str]:
    """Row ``i`` decoded (or None) and why not; ``extra`` gains the clip bounds and facts."""
    start, end = _bound(batch, "start", i), _bound(batch, "end", i)
    if start is not None or end is not None:
        extra.update(zip(CLIP_COLUMNS, (start, end), strict=True))
    listing_error = str(batch["listing_error"][i])
    if listing_error:  # decided at listing time: duplicate or invalid id, bad bounds, ...
        return None, one_line(listing_error, 500)
    fault_point("decode_video", key=str(batch["video_id"][i]))  # tests: a poison-pill video
    try:
        video = decode_video(
            str(batch["source"][i]),
            num_frames,
            start=start,
            end=end,
            storage_options=json.loads(str(batch["storage_options"][i])) or None,
            member=_member(batch, i),
            settings=settings,
        )
    except DecodeError as err:
        return None, one_line(err, 500)
    except Exception as err:  # noqa: BLE001 - recorded in the manifest, job goes on
        reason = f"{failures.UNDECODABLE}: unexpected {type(err).__name__}: {err}"
        return None, one_line(reason, 500)
    extra.update({k: v for k, v in decode_facts(video).items() if v is not None})
    return video, ""


def decode_rows(
    batch: dict[str, np.ndarray], num_frames: int, settings: DecodeSettings | None = None
) -> dict[str, np.ndarray]:
    """The decoded rows of a batch of work rows: its columns but ``LISTING_COLUMNS``, plus
    ``frames``, ``status``, ``error``, ``DECODE_COLUMNS``, ``decode_s`` and the new ``extra``;
    decoded as ``settings`` say (``pipeline.decode_settings``; default exact)."""
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
        extra = json.loads(str(batch["extra"][i])) if "extra" in batch else {}
        video, error = _decode_row(batch, i, num_frames, extra, settings)
        frames, meta = np.zeros((0, 0, 0, 3), np.uint8), empty
        if video is not None:
            frames = video.frames
            meta = (
                video.n_frames,
                video.fps,
                video.duration,
                video.height,
                video.width,
                video.decoder,
                video.indices,
                video.timestamps,
            )
        out["frames"].append(frames)
        out["status"].append(FAILED if video is None else OK)
        out["error"].append(error)
        for key, value in zip(DECODE_COLUMNS, meta, strict=True):
            out[key].append(value)
        out["decode_s"].append(time.perf_counter() - began)
        out["extra"].append(json.dumps(extra, sort_keys=True, default=str))
    result = {k: v for k, v in batch.items() if k not in LISTING_COLUMNS}  # read: not passed on
    frames_col = np.empty(n, dtype=object)
    frames_col[:] = out.pop("frames")
    result["frames"] = frames_col
    for key, values in out.items():
        stacked = key in ("sampled_indices", "timestamps")
        result[key] = np.stack(values) if stacked else np.asarray(values)
    return result
