"""Alignment against hand-computed means and torch's own pooling, compared exactly.

Inputs are integer-valued (or fp16 values on a 2^-10 lattice), so every window sum (and, on the
14x14 grid, every window mean) is exact in float32 and the expected values do not depend on
summation order. Grids are asymmetric in H and
W, so a transposed grid or a wrong permute changes the result.
"""

import numpy as np
import torch
import torch.nn.functional as F

from encoders.align import align_tokens


def _grid_16x16(b: int = 2, t: int = 16, c: int = 3) -> torch.Tensor:
    """x[b, t, h, w, c] = 32 h + w + 1000 c + 10000 t + 200000 b."""
    h = torch.arange(16).view(1, 1, 16, 1, 1)
    w = torch.arange(16).view(1, 1, 1, 16, 1)
    ch = torch.arange(c).view(1, 1, 1, 1, c)
    tt = torch.arange(t).view(1, t, 1, 1, 1)
    bb = torch.arange(b).view(b, 1, 1, 1, 1)
    return (32 * h + w + 1000 * ch + 10000 * tt + 200000 * bb).float()


def test_16x16_grid_becomes_its_2x2_block_means():
    out = align_tokens(_grid_16x16())
    assert out.shape == (2, 16, 64, 3) and out.dtype == torch.float32
    # Output token 8 i + j (row-major) is the mean of rows 2i, 2i+1 and columns 2j, 2j+1:
    # (32 (2i) + 2j + 32 (2i) + 2j + 1 + 32 (2i + 1) + 2j + 32 (2i + 1) + 2j + 1) / 4.
    expected = torch.tensor([[64 * i + 2 * j + 16.5 for j in range(8)] for i in range(8)])
    for b in range(2):
        for t in range(16):
            for c in range(3):
                offset = 1000 * c + 10000 * t + 200000 * b
                assert torch.equal(out[b, t, :, c], expected.flatten() + offset), (b, t, c)


def test_14x14_grid_equals_adaptive_avg_pool2d_per_frame():
    g = torch.Generator().manual_seed(0)
    # Multiples of 36: every window (2x2, 2x3, 3x3 cells) has an integer mean, exact in float32.
    x = 36 * torch.randint(-500, 500, (2, 3, 14, 14, 5), generator=g).float()
    out = align_tokens(x, time_steps=3)
    assert out.shape == (2, 3, 64, 5)
    for b in range(2):
        for t in range(3):
            frame = x[b, t].permute(2, 0, 1)  # [C, H, W], as torch's pool takes it
            ref = F.adaptive_avg_pool2d(frame, 8)  # [C, 8, 8]
            assert torch.equal(out[b, t], ref.flatten(1).T), (b, t)
    # Overlapping windows, written out: output row/column k covers input [start, end).
    windows = [(0, 2), (1, 4), (3, 6), (5, 7), (7, 9), (8, 11), (10, 13), (12, 14)]
    for i, (r0, r1) in enumerate(windows):
        for j, (c0, c1) in enumerate(windows):
            cell = x[1, 2, r0:r1, c0:c1].sum(dim=(0, 1)) / ((r1 - r0) * (c1 - c0))
            assert torch.equal(out[1, 2, 8 * i + j], cell), (i, j)


def _time_ramp(t: int) -> torch.Tensor:
    """x[b, s, h, w, c] = s^2 + 1000 (8 h + w) + 100000 c + 1000000 b on an 8x8 grid."""
    s = torch.arange(t).view(1, t, 1, 1, 1) ** 2
    hw = torch.arange(64).view(1, 1, 8, 8, 1)
    c = torch.arange(3).view(1, 1, 1, 1, 3)
    b = torch.arange(2).view(2, 1, 1, 1, 1)
    return (s + 1000 * hw + 100000 * c + 1000000 * b).float()


def _rest() -> torch.Tensor:
    """The time-independent part of `_time_ramp` as aligned tokens [2, 64, 3]."""
    return (
        1000 * torch.arange(64).view(1, 64, 1)
        + 100000 * torch.arange(3).view(1, 1, 3)
        + 1000000 * torch.arange(2).view(2, 1, 1)
    ).float()


def test_time_pooling_32_to_16_averages_consecutive_pairs():
    out = align_tokens(_time_ramp(32), time_steps=16, grid=8)  # 8x8 grid: space untouched
    assert out.shape == (2, 16, 64, 3)
    for t in range(16):  # ((2t)^2 + (2t + 1)^2) / 2
        assert torch.equal(out[:, t], _rest() + (4 * t * t + 2 * t + 0.5)), t


def test_time_pooling_8_to_16_repeats_each_step():
    out = align_tokens(_time_ramp(8), time_steps=16, grid=8)
    source = [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7]
    for t, s in enumerate(source):
        assert torch.equal(out[:, t], _rest() + s * s), t


def test_time_and_space_pooled_together():
    x = _grid_16x16(b=1, t=32, c=2)  # 32 steps on a 16x16 grid -> 16 x 8x8
    out = align_tokens(x)
    cells = torch.tensor([[64 * i + 2 * j + 16.5 for j in range(8)] for i in range(8)]).flatten()
    for t in range(16):  # steps 2t and 2t + 1: 10000 (2t) and 10000 (2t + 1), mean 20000 t + 5000
        for c in range(2):
            assert torch.equal(out[0, t, :, c], cells + 1000 * c + 20000 * t + 5000), (t, c)


def _fp16_lattice(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    """fp16 values k / 1024 with k in [1024, 2048): exact in fp16; sums exact in float32."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1024, 2048, shape, generator=g).to(torch.float16) / 1024


def test_float16_tokens_are_pooled_in_float32_and_rounded_once():
    x = _fp16_lattice((1, 32, 16, 16, 8), seed=0)
    out = align_tokens(x)
    assert out.dtype == torch.float16 and out.shape == (1, 16, 64, 8)
    # Each output is the mean of 2 steps x 2 x 2 cells, exact in float32, rounded to fp16 once.
    blocks = x.float().reshape(1, 16, 2, 8, 2, 8, 2, 8).sum(dim=(2, 4, 6)) / 8
    expected = blocks.reshape(1, 16, 64, 8).half()
    assert torch.equal(out, expected)
    # Pooling time in fp16 first (a rounding in between) gives different bits: the check bites.
    pairs = ((x[:, 0::2].float() + x[:, 1::2].float()) / 2).half()
    staged = pairs.float().reshape(1, 16, 8, 2, 8, 2, 8).sum(dim=(3, 5)) / 4
    assert not torch.equal(staged.reshape(1, 16, 64, 8).half(), expected)


def _pool_per_frame_float32(grid: torch.Tensor) -> torch.Tensor:
    """[T, 16, 16, C] -> [T, 64, C]: torch's adaptive_avg_pool2d per frame on [C, H, W]."""
    return torch.stack([F.adaptive_avg_pool2d(f.permute(2, 0, 1), 8).flatten(1).T for f in grid])


def test_encoder_actor_pools_in_float32_then_stores_float16():
    from encoders import get_spec
    from jobs.workers import EncoderActor

    name = "dinov2-tiny"  # 16 frames -> 16 x 16x16 x 64: no time pooling, exact 2x2 cells
    actor = EncoderActor(
        [get_spec(name).to_dict()], {}, "fp32", use_gpu=False, cpu_threads=0, time_steps=16, grid=8
    )
    g = torch.Generator().manual_seed(3)
    video = torch.randint(0, 256, (32, 48, 64, 3), generator=g, dtype=torch.uint8)
    batch = {
        "frames": video.numpy()[None],
        "status": np.array(["ok"]),
        "error": np.array([""]),
        "encoders": np.array([name]),
    }
    feats = actor(batch)[f"feat:{name}"]
    assert feats.dtype == np.float16 and feats.shape == (1, 16, 64, 64)
    grid = actor.encoders[name].encode([video])[0]  # float32 [16, 16, 16, 64]
    expected = _pool_per_frame_float32(grid).half()
    assert torch.equal(torch.from_numpy(feats[0]), expected)
    # Rounding the raw grid to fp16 before pooling gives different bits: the check bites.
    assert not torch.equal(_pool_per_frame_float32(grid.half().float()).half(), expected)
