"""Spatio-temporal alignment of an encoder's raw token grid to the common [T, G*G, C] layout.

Runs on the workers, right after the encoder's forward: every encoder's features are stored
aligned, so encoders with different grids (16x16, 14x14) and time steps share one layout.

Time: adaptive average pooling to ``time_steps`` (a no-op when the encoder already has 16 steps).
Space: per frame, ``adaptive_avg_pool2d`` of the patch grid to ``grid x grid`` (16x16 -> exact
2x2 means; 14x14 -> overlapping windows), as MERV's reference does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def align_tokens(tokens: torch.Tensor, time_steps: int = 16, grid: int = 8) -> torch.Tensor:
    """[B, T, H, W, C] raw grid -> [B, time_steps, grid*grid, C] in the input dtype."""
    if tokens.ndim != 5:
        raise ValueError(f"expected a token grid [B, T, H, W, C], got shape {tuple(tokens.shape)}")
    b, t, h, w, c = tokens.shape
    x = tokens.float()
    if t != time_steps:
        # [B, T, H, W, C] -> [B, H*W*C, T] so pooling runs over time only.
        x = x.permute(0, 2, 3, 4, 1).reshape(b, h * w * c, t)
        x = F.adaptive_avg_pool1d(x, time_steps)
        x = x.reshape(b, h, w, c, time_steps).permute(0, 4, 1, 2, 3)
    # [B, T, H, W, C] -> [B*T, C, H, W] for the 2-D pool, then back to tokens.
    x = x.reshape(b * time_steps, h, w, c).permute(0, 3, 1, 2)
    x = F.adaptive_avg_pool2d(x, grid)
    x = x.permute(0, 2, 3, 1).reshape(b, time_steps, grid * grid, c)
    return x.to(tokens.dtype)
