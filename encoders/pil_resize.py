"""Pillow's resampling, bit for bit, as batched float64 matrix products on any torch device.

The reference transforms of dinov2, siglip, vivit and clip resize PIL images. Pillow resamples
in two separable passes with fixed-point coefficients (22 fractional bits) and stores the
intermediate image as uint8. torch's antialiased `F.interpolate` uses the same kernels but float
weights and no intermediate rounding, which moves about one pixel in five by one uint8 level.
Here each pass is a product with Pillow's own integer coefficient matrix; in float64 the sums of
integer products stay exact (< 2^53), so the result equals Pillow's on every pixel, on CPU or GPU.
Only the band of input columns an output block needs is multiplied, so the cost stays close to
that of a separable filter.

Coefficients follow Pillow's `precompute_coeffs` / `normalize_coeffs_8bpc` (Resample.c); the pass
order follows Pillow >= 13 (vertical first when the height shrinks more than twice as much as the
width; older Pillow always went horizontal first, which can differ by one level on such frames).
"""

from __future__ import annotations

import functools

import torch

_PRECISION = 1 << 22  # Pillow's PRECISION_BITS = 32 - 8 - 2
_BLOCK = 32  # output rows/columns per banded product


def _bicubic(x: float) -> float:  # Pillow's bicubic_filter, a = -0.5, same operation order
    a = -0.5
    x = -x if x < 0.0 else x
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x: float) -> float:
    x = -x if x < 0.0 else x
    return 1.0 - x if x < 1.0 else 0.0


_FILTERS = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


@functools.lru_cache(maxsize=256)
def _coefficients(
    in_size: int, out_size: int, mode: str, device: str
) -> tuple[torch.Tensor, tuple[tuple[int, int, int, int], ...]]:
    """Pillow's integer coefficients as a dense [out, in] float64 matrix, plus, per block of
    `_BLOCK` outputs, (first output, end output, first input, end input) of its nonzero band."""
    filt, filter_support = _FILTERS[mode]
    scale = filterscale = in_size / out_size
    filterscale = max(filterscale, 1.0)
    support = filter_support * filterscale
    inv_filterscale = 1.0 / filterscale
    rows: list[list[float]] = []
    spans: list[tuple[int, int]] = []
    for xx in range(out_size):  # plain Python floats are C doubles: same rounding as Pillow
        center = (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        count = min(int(center + support + 0.5), in_size) - xmin
        ws = [filt((x + xmin - center + 0.5) * inv_filterscale) for x in range(count)]
        total = 0.0
        for w in ws:  # sequential sum, as in C
            total += w
        if total != 0.0:
            ws = [w / total for w in ws]
        row = [0.0] * in_size
        for x, w in enumerate(ws):  # round half away from zero into fixed point
            row[xmin + x] = float(int(w * _PRECISION - 0.5) if w < 0 else int(w * _PRECISION + 0.5))
        rows.append(row)
        spans.append((xmin, xmin + count))
    blocks = tuple(
        (
            o0,
            min(o0 + _BLOCK, out_size),
            min(s[0] for s in spans[o0 : o0 + _BLOCK]),
            max(s[1] for s in spans[o0 : o0 + _BLOCK]),
        )
        for o0 in range(0, out_size, _BLOCK)
    )
    return torch.tensor(rows, dtype=torch.float64, device=device), blocks


def _resample(x: torch.Tensor, dim: int, out_size: int, mode: str) -> torch.Tensor:
    """One Pillow pass along `dim` (-1: horizontal, -2: vertical); returns float64 uint8 values."""
    in_size = x.shape[dim]
    if in_size == out_size:
        return x.double()
    matrix, blocks = _coefficients(in_size, out_size, mode, str(x.device))
    out_shape = list(x.shape)
    out_shape[dim] = out_size
    out = torch.empty(out_shape, dtype=torch.float64, device=x.device)
    for o0, o1, c0, c1 in blocks:
        band = x.narrow(dim, c0, c1 - c0).double()
        if dim == -1:
            out[..., o0:o1] = band @ matrix[o0:o1, c0:c1].T
        else:
            out[..., o0:o1, :] = matrix[o0:o1, c0:c1] @ band
    # Pillow: (sum + 2^21) >> 22, clipped to 0..255 (division by a power of two is exact)
    return out.add_(_PRECISION // 2).div_(_PRECISION).floor_().clamp_(0, 255)


def pil_resize(x: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """[N, C, H, W] integer-valued (uint8 or float) -> float64 [N, C, h, w], as PIL resizes."""
    if mode not in _FILTERS:
        raise ValueError(f"interpolation {mode!r} not in {sorted(_FILTERS)}")
    h, w = x.shape[-2:]
    oh, ow = size
    if h - oh > 0 and h - oh > 2 * (w - ow):
        return _resample(_resample(x, -2, oh, mode), -1, ow, mode)
    return _resample(_resample(x, -1, ow, mode), -2, oh, mode)
