import os

import numpy as np
import pytest

from pipeline import in_order
from pipeline.decode import DecodeError, decode_video
from pipeline.synthetic import ClipSpec, render_clip, write_video
from tests.conftest import REAL_CORPUS
from tests.pipeline.expected_indices import MERV32

REAL_EXPECTED = {  # file: (frames, height, width), from the corpus README / ffprobe
    "mmaction2_test.avi": (164, 240, 320),
    "mmaction2_part_0.mp4": (32, 256, 340),
    "decord_flipping_a_pancake.mkv": (310, 240, 426),
    "mmaction2_demo_spatiotemporal_det.mp4": (57, 256, 340),
}


@pytest.mark.parametrize("name", sorted(REAL_EXPECTED))
def test_real_clips_decode_at_the_sampled_indices(real_corpus, name):
    n, h, w = REAL_EXPECTED[name]
    video = decode_video(str(real_corpus / name))
    assert video.n_frames == n
    assert video.frames.shape == (32, h, w, 3) and video.frames.dtype == np.uint8
    assert video.indices.tolist() == MERV32[n]  # written out, not recomputed
    assert np.all(np.diff(video.timestamps) >= 0)
    assert video.fps > 0 and video.duration > 0


REAL_CLIPS = sorted(p.name for p in REAL_CORPUS.iterdir()) if REAL_CORPUS.is_dir() else []


@pytest.mark.parametrize("name", REAL_CLIPS)
def test_every_decoder_gives_todays_frames_on_real_clips(real_corpus, name):
    """Exact decoding is pixel for pixel what decord and FFmpeg's own in-order decode give
    (today's decoders), whichever decoder the chain picks (GOP-aware seeking first)."""
    path = str(real_corpus / name)
    chosen = decode_video(path)
    in_order = decode_video(path, decoders=("pyav",))
    assert chosen.decoder == ("pyav" if name.endswith(".avi") else "pyav-seek")
    assert in_order.frames_decoded == int(in_order.indices.max()) + 1
    assert 32 <= chosen.frames_decoded <= in_order.frames_decoded
    assert np.array_equal(chosen.indices, in_order.indices)
    assert np.array_equal(chosen.timestamps, in_order.timestamps)
    assert np.array_equal(chosen.frames, in_order.frames)
    # decord as the chain ran it before (its own threads): the frames stores so far hold. Not on
    # AVI with B-frames: there decord returns frame 98 for 102 now and then (always with one
    # thread), which is why AVI is decoded in order now.
    if name == "ntu_S001C001P001R001A001_rgb.avi":
        return
    import decord  # after PyAV: imported first, its bundled FFmpeg shadows PyAV's encoders

    reader = decord.VideoReader(path, ctx=decord.cpu(0), num_threads=0)
    assert np.array_equal(chosen.frames, reader.get_batch(chosen.indices.tolist()).asnumpy())


def _every_frame(path: str) -> list[np.ndarray]:
    """Ground truth: every frame FFmpeg decodes, in order, straight from PyAV."""
    import av

    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def _plan_for(first: int, want: int) -> in_order.Plan:
    """A plan for frames [first, first + want), as a probe that counted that many packets would
    make it (a damaged file whose tail packets do not decode)."""
    indices = np.asarray([first + i * (want - 1) // 31 for i in range(32)], dtype=np.int64)
    return in_order.Plan(first + want, first, first + want, indices, None)


# mmaction2_part_0.mp4 decodes 32 frames. Salvage needs at least half the wanted range.
@pytest.mark.parametrize(
    "first, want, expected",
    [
        (0, 32, list(range(32))),  # nothing missing: no salvage
        (0, 63, list(range(32))),  # 32 of 63: just over half
        (0, 64, list(range(32))),  # 32 of 64: exactly half still salvages
        (
            8,
            48,
            [8 + i for i in MERV32[24]],
        ),  # a clip from frame 8: 24 of 48, resampled in the clip
    ],
)
def test_pyav_salvages_a_prefix_of_at_least_half(real_corpus, first, want, expected):
    path = str(real_corpus / "mmaction2_part_0.mp4")
    frames, used, note, decoded = in_order.decode_in_order(path, _plan_for(first, want))
    have = min(32, first + want) - first
    assert decoded == (32 if have == want else 64)  # a salvage decodes twice
    assert used.indices.tolist() == expected
    assert (used.first, used.stop) == (first, first + have)
    if have == want:
        assert note is None
    else:
        assert note == f"salvaged {have} of {want} frames (early end of stream)"
    truth = _every_frame(path)
    assert len(truth) == 32
    assert frames.shape == (32, 256, 340, 3)
    assert all(np.array_equal(f, truth[i]) for f, i in zip(frames, expected, strict=True))


@pytest.mark.parametrize("first, want", [(0, 65), (8, 49), (0, 320)])
def test_pyav_refuses_to_salvage_less_than_half(real_corpus, first, want):
    path = str(real_corpus / "mmaction2_part_0.mp4")
    have = 32 - first
    with pytest.raises(DecodeError) as info:
        in_order.decode_in_order(path, _plan_for(first, want))
    assert info.value.kind == "undecodable"
    assert str(info.value) == f"undecodable: only {have} of {want} frames decode (EOF)"


def test_generated_clip_frames_show_the_shape_where_it_was_drawn(tmp_path):
    spec = ClipSpec("red_right", n_frames=40, size=64, shape_size=16, y=10, seed=3)
    frames = render_clip(spec)
    path = str(tmp_path / "clip.mp4")
    write_video(path, frames)
    video = decode_video(path)
    assert video.n_frames == 40
    expected = frames[video.indices]
    # Lossy codec: close on average, and the red square is where it was drawn.
    assert np.abs(video.frames.astype(int) - expected.astype(int)).mean() < 8
    first_x = int(np.argmax(video.frames[0, 18, :, 0] > 200))
    last_x = int(np.argmax(video.frames[-1, 18, :, 0] > 200))
    assert first_x < 4 and last_x > 40  # moved left to right


def test_short_clip_repeats_frames(tmp_path):
    frames = render_clip(ClipSpec("blue_left", n_frames=5, size=32, shape_size=8, y=0, seed=1))
    path = str(tmp_path / "short.mp4")
    write_video(path, frames)
    video = decode_video(path)
    assert video.n_frames == 5
    assert video.indices.tolist() == MERV32[5]
    assert np.array_equal(video.frames[0], video.frames[1])  # index 0 sampled twice


@pytest.mark.parametrize(
    "content", [b"", b"not a video at all" * 100, b"\x00\x00\x00\x18ftypisom" + b"\x01" * 2048]
)
def test_bad_files_raise_a_one_line_reason_from_every_decoder(tmp_path, content):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(DecodeError) as info:
        decode_video(str(path))
    reason = str(info.value)
    assert "\n" not in reason
    assert "decord:" in reason and "pyav:" in reason


def test_missing_file_is_a_decode_error(tmp_path):
    with pytest.raises(DecodeError):
        decode_video(os.path.join(tmp_path, "nope.mp4"))
