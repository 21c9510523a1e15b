"""The encoder stage in-process: one video's failure stays its own, and batches never leak.

`EncoderActor` is what each Ray encoder actor runs; calling it directly exercises the same code
on real tiny encoders without a Ray round trip.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from encoders import get_spec
from jobs.workers import EncoderActor
from pipeline.failures import ENCODER, reason_class
from tests.helpers import noise_frames

ENCODERS = ["siglip-tiny", "vivit-tiny"]
BATCH = 4


def _video(seed: int, h: int = 72, w: int = 96) -> np.ndarray:
    return noise_frames(32, h, w, seed)


def _poisoned() -> np.ndarray:
    """A constant white video: after preprocessing, the only input whose pixels do not vary."""
    return np.full((32, 64, 64, 3), 255, dtype=np.uint8)


def _batch(videos: list[np.ndarray], encoders: list[str] = ENCODERS) -> dict[str, np.ndarray]:
    n = len(videos)
    frames = np.empty(n, dtype=object)
    frames[:] = videos
    return {
        "frames": frames,
        "status": np.asarray(["ok"] * n),
        "error": np.asarray([""] * n),
        "encoders": np.asarray([",".join(encoders)] * n),
        "row": np.arange(n),
    }


def _actor() -> EncoderActor:
    specs = [get_spec(name).to_dict() for name in ENCODERS]
    return EncoderActor(
        specs,
        {},
        dtype="fp32",
        use_gpu=False,
        cpu_threads=0,
        time_steps=16,
        grid=8,
        batch_size=BATCH,
    )


@pytest.fixture(scope="module")
def actor() -> EncoderActor:
    return _actor()


class _FailOnConstantVideo(torch.nn.Module):
    """Fault injection around a real backbone: raises when a constant (non-zero) video is among
    the inputs, as a real model can fail on one odd input. Zero padding never triggers it."""

    def __init__(self, backbone: torch.nn.Module) -> None:
        super().__init__()
        self.inner = backbone
        self.spec = backbone.spec

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        flat = pixels.flatten(1)
        if bool(((flat.std(dim=1) == 0) & (flat.abs().sum(dim=1) > 0)).any()):
            raise RuntimeError("injected failure:\n  on a constant video")
        return self.inner(pixels)


def test_one_videos_encoder_error_fails_only_that_video():
    actor = _actor()
    siglip = actor.encoders["siglip-tiny"]
    siglip.backbone = _FailOnConstantVideo(siglip.backbone)
    good = [_video(1), _video(2), _video(3)]
    out = actor(_batch([good[0], _poisoned(), good[1], good[2]]))

    assert out["status"].tolist() == ["ok", "failed", "ok", "ok"]
    reason = str(out["error"][1])
    assert reason_class(reason) == ENCODER  # "encoder: siglip-tiny: ..." groups like any failure
    assert reason.startswith("encoder: siglip-tiny: ") and "injected failure" in reason
    assert "\n" not in reason
    assert not out["feat:siglip-tiny"][1].any()  # nothing stored for the failed video
    # The rest of the batch is stored, bitwise what a clean actor computes for those videos.
    clean = _actor()(_batch(good))
    for name in ENCODERS:
        np.testing.assert_array_equal(out[f"feat:{name}"][[0, 2, 3]], clean[f"feat:{name}"])


def test_every_forward_runs_on_exactly_batch_size_videos(actor):
    seen: list[int] = []
    hooks = [
        enc.backbone.register_forward_pre_hook(lambda _m, args: seen.append(args[0].shape[0]))
        for enc in actor.encoders.values()
    ]
    try:
        actor(_batch([_video(s) for s in range(6)]))  # one full batch, then a partial one of 2
        actor(_batch([_video(7)]))
    finally:
        for hook in hooks:
            hook.remove()
    assert seen and set(seen) == {BATCH}, seen


def test_features_do_not_depend_on_batch_neighbours_or_position(actor):
    target = _video(42, 90, 120)
    others = [_video(s, 60 + 6 * s, 80) for s in range(1, 8)]
    runs = [
        [target],  # alone: a partial batch padded with zeros
        [others[0], others[1], target],  # last of a partial batch
        [target, *others[:3]],  # first of a full batch
        [*others[:5], target],  # first of the final partial batch (6 videos, batch 4)
        [*others[:4], *others[4:7], target],  # last of a second full batch
    ]
    reference = None
    for videos in runs:
        out = actor(_batch(videos))
        pos = next(i for i, v in enumerate(videos) if v is target)
        got = {name: out[f"feat:{name}"][pos] for name in ENCODERS}
        if reference is None:
            reference = got
        for name in ENCODERS:
            np.testing.assert_array_equal(got[name], reference[name], err_msg=f"{name} {pos}")


def test_rows_that_failed_decoding_or_want_other_encoders_stay_zero(actor):
    batch = _batch([_video(1), _video(2), _video(3)])
    batch["status"] = np.asarray(["ok", "failed", "ok"])
    batch["error"] = np.asarray(["", "corrupt: bad header", ""])
    batch["encoders"] = np.asarray(
        ["siglip-tiny,vivit-tiny", "siglip-tiny,vivit-tiny", "vivit-tiny"]
    )
    out = actor(batch)
    assert out["status"].tolist() == ["ok", "failed", "ok"]
    assert out["error"][1] == "corrupt: bad header"  # a decode failure passes through untouched
    assert not out["feat:siglip-tiny"][1:].any() and not out["feat:vivit-tiny"][1].any()
    assert out["feat:siglip-tiny"][0].any()
    assert out["feat:vivit-tiny"][0].any() and out["feat:vivit-tiny"][2].any()
