import torch
import torch.nn.functional as F

from pipeline.align import align_tokens


def test_16x16_grid_becomes_exact_2x2_means():
    x = torch.randn(2, 16, 16, 16, 8)
    out = align_tokens(x)
    assert out.shape == (2, 16, 64, 8)
    manual = x.reshape(2, 16, 8, 2, 8, 2, 8).mean(dim=(3, 5)).reshape(2, 16, 64, 8)
    torch.testing.assert_close(out, manual)


def test_14x14_grid_matches_adaptive_avg_pool2d():
    x = torch.randn(3, 16, 14, 14, 6)
    out = align_tokens(x)
    ref = F.adaptive_avg_pool2d(x.permute(0, 1, 4, 2, 3).reshape(48, 6, 14, 14), 8)
    ref = ref.reshape(3, 16, 6, 64).permute(0, 1, 3, 2)
    torch.testing.assert_close(out, ref)
    # Overlapping windows: the first output cell averages rows/cols 0..1 of the 14x14 grid.
    torch.testing.assert_close(out[0, 0, 0], x[0, 0, :2, :2].mean(dim=(0, 1)))


def test_time_is_pooled_to_sixteen_steps():
    x = torch.randn(1, 32, 8, 8, 4)
    out = align_tokens(x, time_steps=16, grid=8)
    torch.testing.assert_close(out[0, 3], x[0, 6:8].mean(0).reshape(64, 4))


def test_dtype_is_kept_and_other_grids_work():
    x = torch.randn(1, 16, 16, 16, 4, dtype=torch.float16)
    out = align_tokens(x, grid=4)
    assert out.dtype == torch.float16 and out.shape == (1, 16, 16, 4)
