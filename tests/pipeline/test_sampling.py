import numpy as np
import pytest

from pipeline.sampling import encoder_frame_positions, sample_indices


@pytest.mark.parametrize("n", [1, 5, 31, 32, 33, 57, 164, 300, 10_000])
def test_indices_follow_the_reference_rule(n):
    idx = sample_indices(n)
    expected = [int(x) for x in np.linspace(0, n - 1, 32)]  # the reference's int() truncation
    assert idx.tolist() == expected
    assert idx[0] == 0 and idx[-1] == n - 1
    assert np.all(np.diff(idx) >= 0)


def test_short_clips_repeat_indices():
    assert sample_indices(5).tolist().count(0) == 8
    assert sorted(set(sample_indices(5).tolist())) == [0, 1, 2, 3, 4]


def test_still_image_repeats_its_only_frame():
    assert sample_indices(1).tolist() == [0] * 32


def test_zero_frames_is_an_error():
    with pytest.raises(ValueError, match="0 frames"):
        sample_indices(0)


def test_sixteen_frame_encoders_take_every_second_sampled_frame():
    assert encoder_frame_positions(32, 16).tolist() == list(range(0, 32, 2))
    assert encoder_frame_positions(32, 32).tolist() == list(range(32))
    with pytest.raises(ValueError, match="does not divide"):
        encoder_frame_positions(32, 12)
