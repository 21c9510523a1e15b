"""Shared fixtures: small uint8 videos of different sizes; the hub is never contacted."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True)
def _offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def make_video(h: int, w: int, seed: int, frames: int = 32) -> torch.Tensor:
    """Smooth-ish random video (a blurred noise field plus a moving gradient), uint8 [F, H, W, 3]."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.rand(frames, 3, h // 8 + 1, w // 8 + 1, generator=g)
    base = torch.nn.functional.interpolate(noise, size=(h, w), mode="bilinear", align_corners=False)
    ramp = torch.linspace(0, 1, w).view(1, 1, 1, w) * torch.linspace(0, 1, frames).view(-1, 1, 1, 1)
    fine = torch.rand(frames, 3, h, w, generator=g) * 0.15
    video = (0.6 * base + 0.3 * ramp + fine).clamp(0, 1) * 255
    return video.round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()


@pytest.fixture(scope="session")
def videos() -> list[torch.Tensor]:
    return [make_video(240, 320, seed=1), make_video(300, 226, seed=2)]


@pytest.fixture(scope="session")
def video_factory():  # noqa: ANN201 - returns the helper above
    return make_video
