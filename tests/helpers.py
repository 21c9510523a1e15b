"""Helpers shared by several test modules (import as ``from tests.helpers import ...``)."""

from __future__ import annotations

import numpy as np


def direct_encode(name_or_spec, frames: np.ndarray, pad_to: int) -> np.ndarray:
    """What the extraction job stores for one decoded video, computed in-process.

    The job's encoder actor runs one torch thread (its one reserved CPU) and pads every forward
    to ``batch_size``; doing the same here makes the promise bitwise equality, so a test can use
    exact comparison (reduction order changes with the thread count).
    """
    import torch

    from encoders import build_encoder
    from pipeline.align import align_tokens

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        grid = build_encoder(name_or_spec).encode([torch.from_numpy(frames)], pad_to=pad_to)
        return align_tokens(grid).to(torch.float16).numpy()[0]
    finally:
        torch.set_num_threads(threads)
