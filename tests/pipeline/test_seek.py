"""GOP-aware sparse seeking returns exactly the frames a decode of every frame returns, and
decodes fewer of them: long keyframe intervals, B-frames, variable frame rate, real clips."""

import dataclasses

import numpy as np
import pytest

from pipeline.decode import decode_video
from pipeline.decode_settings import DecodeSettings
from pipeline.probe import probe
from pipeline.seek import SeekUnsupported, decode_sparse, seek_groups
from tests.pipeline.zoo import frames, write_clip

# x264 with a fixed 250-frame GOP and B-frames: the long keyframe interval of real footage
G250 = {"preset": "veryfast", "x264-params": "keyint=250:min-keyint=250:scenecut=0:bframes=3"}


def _every_frame(path: str) -> list[np.ndarray]:
    """Ground truth: every frame FFmpeg decodes, in order, straight from PyAV."""
    import av

    with av.open(path) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


@pytest.fixture(scope="module")
def g250(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("g250") / "g250.mp4")
    return write_clip(path, frames(640, 48, 64, seed=3), fps=30, options=G250)


def test_seek_groups_split_samples_by_their_governing_keyframe():
    groups = seek_groups(np.array([0, 5, 5, 249, 250, 251, 600, 3]), np.array([0, 250, 500]))
    assert groups == [(0, [0, 3, 5, 249]), (250, [250, 251]), (500, [600])]
    assert seek_groups(np.array([2, 7]), np.array([4])) == [(0, [2]), (4, [7])]


def test_probe_sees_the_keyframe_interval(g250):
    info = probe(g250)
    assert info.keyframes.tolist() == [0, 250, 500] and info.keyframe_interval == 250
    assert info.seekable and info.pts is not None and np.all(np.diff(info.pts) > 0)


@pytest.mark.parametrize(
    "indices",
    [
        [0, 1, 2, 249, 250, 251, 499, 500, 639],  # both sides of every keyframe, and the end
        list(np.linspace(0, 639, 32).astype(int)),  # MERV's sampling
        [300, 310, 620],  # nothing from the first GOP
    ],
)
def test_grouped_seek_returns_the_frames_of_a_full_decode(g250, indices):
    truth, info = _every_frame(g250), probe(g250)
    got = decode_sparse(g250, info, np.array(indices), None, 1, "BICUBIC")
    assert sorted(got.frames) == sorted(set(indices))
    for i in indices:
        assert np.array_equal(got.frames[i], truth[i]), i
    # one seek per group whose keyframe lies ahead; never more frames than a decode from 0
    assert got.seeks <= len(seek_groups(np.array(indices), info.keyframes))
    assert got.decoded <= max(indices) + 1


def test_merv_sampling_decodes_fewer_frames_than_everything(g250):
    video = decode_video(g250)
    truth = _every_frame(g250)
    assert video.decoder == "pyav-seek" and video.keyframe_interval == 250
    assert all(
        np.array_equal(f, truth[i]) for f, i in zip(video.frames, video.indices, strict=True)
    )
    # unneeded non-reference B-frames are dropped before decoding
    assert 32 <= video.frames_decoded < 640


def test_samples_in_later_gops_skip_the_earlier_ones_entirely(tmp_path):
    # intra-only B-free stream with a 250 GOP: a sample at 600 decodes from keyframe 500 only
    path = write_clip(
        str(tmp_path / "p.mp4"),
        frames(640, 48, 64, seed=4),
        fps=30,
        options={**G250, "x264-params": "keyint=250:min-keyint=250:scenecut=0:bframes=0"},
    )
    info, truth = probe(path), _every_frame(path)
    got = decode_sparse(path, info, np.array([10, 600]), None, 1, "BICUBIC")
    assert got.seeks == 1 and got.decoded == 11 + 101  # 0..10, then 500..600
    assert np.array_equal(got.frames[600], truth[600])


@pytest.mark.parametrize("container", ["mkv", "mp4"])
def test_variable_frame_rate_frames_are_named_by_their_pts(tmp_path, container):
    rng = np.random.default_rng(5)
    pts_ms = np.cumsum(rng.choice([10, 33, 40, 100, 250], size=400)).tolist()
    path = write_clip(
        str(tmp_path / f"vfr.{container}"),
        frames(400, 48, 64, seed=6),
        options={"x264-params": "keyint=120:min-keyint=120:scenecut=0:bframes=2"},
        pts_ms=pts_ms,
    )
    truth, info = _every_frame(path), probe(path)
    assert info.n_frames == 400 and info.keyframe_interval == 120
    indices = np.linspace(0, 399, 32).astype(int)
    got = decode_sparse(path, info, indices, None, 1, "BICUBIC")
    assert all(np.array_equal(got.frames[int(i)], truth[int(i)]) for i in indices)
    clip = decode_video(path, start=2.0, end=9.0)  # clips by time still pick the same frames
    assert clip.decoder == "pyav-seek"
    assert all(np.array_equal(f, truth[i]) for f, i in zip(clip.frames, clip.indices, strict=True))


@pytest.mark.parametrize("threads", [0, 2])
def test_threaded_decoding_returns_the_same_frames(g250, threads):
    one = decode_video(g250)
    many = decode_video(g250, settings=DecodeSettings(threads=threads))
    assert many.decoder == "pyav-seek" and np.array_equal(one.frames, many.frames)


def test_files_whose_pts_cannot_name_frames_are_declined(real_corpus):
    # AVI stores decode times only: FFmpeg's made-up pts are not presentation order
    info = probe(str(real_corpus / "ntu_S001C001P001R001A001_rgb.avi"))
    assert not info.seekable
    with pytest.raises(SeekUnsupported):
        decode_sparse(str(real_corpus / "ntu_S001C001P001R001A001_rgb.avi"), info, np.arange(3),
                      None, 1, "BICUBIC")  # fmt: skip
    # and were it taken for a container with real pts, the decoded order gives it away
    as_mkv = dataclasses.replace(info, format="matroska,webm")
    with pytest.raises(SeekUnsupported, match="out of order"):
        decode_sparse(str(real_corpus / "ntu_S001C001P001R001A001_rgb.avi"), as_mkv,
                      np.linspace(0, 102, 32).astype(int), None, 1, "BICUBIC")  # fmt: skip
    video = decode_video(str(real_corpus / "ntu_S001C001P001R001A001_rgb.avi"))
    truth = _every_frame(str(real_corpus / "ntu_S001C001P001R001A001_rgb.avi"))
    assert video.decoder == "pyav" and video.frames_decoded == 103
    assert all(
        np.array_equal(f, truth[i]) for f, i in zip(video.frames, video.indices, strict=True)
    )
