import numpy as np
import pytest

from pipeline.sampling import clip_range, sample_indices
from tests.pipeline.expected_indices import MERV32


@pytest.mark.parametrize("n", [1, 5, 31, 32, 33, 57, 164, 300, 10_000])
def test_indices_follow_the_reference_rule(n):
    idx = sample_indices(n)
    expected = [int(x) for x in np.linspace(0, n - 1, 32)]  # the reference's int() truncation
    assert idx.tolist() == expected
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) >= 0)


@pytest.mark.parametrize("n", sorted(MERV32))
def test_indices_match_the_written_out_lists(n):
    idx = sample_indices(n)
    assert idx.dtype == np.int64
    assert idx.tolist() == MERV32[n]


def test_indices_truncate_never_round():
    # n=10: i * 9/31 for i=3 is 0.87 (truncated to 0, rounding would give 1), i=30 is 8.71.
    idx = sample_indices(10).tolist()
    assert idx[3] == 0 and idx[30] == 8
    # n=33: every step is 32/31 > 1, so index 31 is skipped and 32 is the last one.
    assert 31 not in sample_indices(33).tolist()


def test_other_sample_counts_use_the_same_rule():
    assert sample_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert sample_indices(100, 8).tolist() == [0, 14, 28, 42, 56, 70, 84, 99]


def test_short_clips_repeat_indices():
    assert sample_indices(5).tolist().count(0) == 8
    assert sorted(set(sample_indices(5).tolist())) == [0, 1, 2, 3, 4]


def test_still_image_repeats_its_only_frame():
    assert sample_indices(1).tolist() == [0] * 32


def test_zero_frames_is_an_error():
    with pytest.raises(ValueError, match="0 frames"):
        sample_indices(0)


TENTHS = np.arange(10) / 10  # frames at 0.0, 0.1, ..., 0.9 s


@pytest.mark.parametrize(
    "start, end, expected",
    [
        (None, None, (0, 10)),
        (float("nan"), float("nan"), (0, 10)),
        (0.2, 0.5, (2, 5)),  # start on a frame: kept; end on a frame: excluded (half-open)
        (0.25, 0.55, (3, 6)),  # between frames: the next frame on both sides
        (None, 0.3, (0, 3)),
        (0.7, None, (7, 10)),
        (0.0, 0.1, (0, 1)),  # exactly one frame
        (0.9, 5.0, (9, 10)),
        (0.95, None, (10, 10)),  # past the last frame: empty
        (0.31, 0.39, (4, 4)),  # between two frames: empty
    ],
)
def test_clip_range_is_half_open_by_timestamp(start, end, expected):
    assert clip_range(TENTHS, start, end) == expected


def test_back_to_back_clips_share_no_frame_and_miss_none():
    cuts = [0.0, 0.3, 0.5, 0.8, 1.0]
    ranges = [clip_range(TENTHS, a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    assert ranges == [(0, 3), (3, 5), (5, 8), (8, 10)]


def test_clip_bounds_tolerate_rounding_in_computed_timestamps():
    # Timestamps are pts * time_base: with a 1/3 s time base frames 5 and 7 land a hair below
    # 5/3 and 7/3. A clip [5/3, 7/3) still starts at frame 5 and stops before frame 7.
    thirds = np.arange(10) * (1 / 3)
    assert thirds[5] < 5 / 3 and thirds[7] < 7 / 3
    assert clip_range(thirds, 5 / 3, 7 / 3) == (5, 7)
    # Variable frame rate: the clip follows timestamps, not index / fps.
    vfr = np.array([0.0, 0.04, 0.08, 0.2, 0.22, 0.4, 0.41, 0.42, 0.7, 1.0])
    assert clip_range(vfr, 0.1, 0.41) == (3, 6)
    assert clip_range(vfr, 0.41, None) == (6, 10)
