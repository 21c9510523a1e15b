"""Frame sampling exactly as the MERV reference does it.

One decode per video feeds every encoder: 32 indices from ``numpy.linspace(0, n - 1, 32)``
truncated to int (endpoints included, repeated indices when the clip is short). ViViT takes all
32; every 16-frame encoder takes every second one (sampled frames 0, 2, ..., 30).
"""

from __future__ import annotations

import numpy as np

NUM_SAMPLED_FRAMES = 32


def sample_indices(n_frames: int, num: int = NUM_SAMPLED_FRAMES) -> np.ndarray:
    """Frame indices to decode for a video of ``n_frames`` frames (int64, length ``num``)."""
    if n_frames < 1:
        raise ValueError(f"cannot sample frames from a video with {n_frames} frames")
    # astype(int) truncates towards zero, which is what the reference's int() cast does.
    return np.linspace(0, n_frames - 1, num).astype(np.int64)


def encoder_frame_positions(num_sampled: int, encoder_frames: int) -> np.ndarray:
    """Positions within the sampled frames that an encoder taking ``encoder_frames`` uses."""
    if num_sampled % encoder_frames:
        raise ValueError(
            f"encoder wants {encoder_frames} frames, which does not divide the "
            f"{num_sampled} sampled frames"
        )
    return np.arange(0, num_sampled, num_sampled // encoder_frames)
