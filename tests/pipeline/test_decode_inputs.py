"""Decoding that never lies: rotation, codecs decord mis-seeks, VFR, clips, huge frames, remote
sources, bounded retries."""

import io
import json
import tarfile
from types import SimpleNamespace

import numpy as np
import pytest

from pipeline import decode_rows as decode_rows_module
from pipeline import fetch
from pipeline.decode import DecodeError, decode_video
from pipeline.decode_rows import decode_rows
from pipeline.decode_settings import DecodeSettings
from pipeline.rows import LISTING_COLUMNS, work_table
from pipeline.sampling import clip_range
from pipeline.sources import list_videos
from pipeline.sources.item import TarMember
from tests.pipeline.expected_indices import MERV32
from tests.pipeline.zoo import frames, lossless, remux_rotated, write_clip


def _truth(path: str) -> tuple[list[np.ndarray], np.ndarray]:
    """Every frame that decodes, in order, by FFmpeg itself (PyAV), and its time from the first
    frame: the ground truth."""
    import av

    images, times = [], []
    with av.open(path) as container:
        try:
            for frame in container.decode(video=0):
                images.append(frame.to_ndarray(format="rgb24"))
                times.append(frame.time)
        except av.error.InvalidDataError:
            pass  # a truncated file: what decoded so far is all there is
    return images, np.asarray(times) - times[0]


@pytest.mark.parametrize("clockwise", [90, 180, 270])
def test_rotated_video_comes_out_upright(tmp_path, clockwise):
    upright = write_clip(str(tmp_path / "up.mp4"), frames(20, 48, 64))
    rotated = remux_rotated(upright, str(tmp_path / "rot.mp4"), clockwise)  # same packets
    a, b = decode_video(upright), decode_video(rotated)
    # decord mangles these; the seeking PyAV decoder turns them after decoding
    assert b.rotation == (360 - clockwise) % 360 and b.decoder == "pyav-seek"
    expected = np.rot90(a.frames, k=-clockwise // 90, axes=(1, 2))  # turn as a player would
    assert b.frames.shape == expected.shape and np.array_equal(b.frames, expected)
    assert (b.source_height, b.source_width) == (48, 64)


@pytest.mark.parametrize(
    "codec, ext, fps",
    [("libvpx-vp9", "webm", 16), ("mpeg2video", "mpg", 25), ("mpeg2video", "ts", 25)],
)
def test_vp9_and_mpeg2_decode_the_true_frames(tmp_path, codec, ext, fps):
    path = write_clip(str(tmp_path / f"v.{ext}"), frames(40, 48, 64), codec=codec, fps=fps)
    video, (truth, times) = decode_video(path), _truth(path)
    assert video.n_frames == len(truth) == 40
    assert video.indices.tolist() == MERV32[40]
    # MPEG-PS/TS seeks are byte guesses (and decord reads the wrong frames): decoded in order.
    assert video.decoder == ("pyav-seek" if codec == "libvpx-vp9" else "pyav")
    for frame, i in zip(video.frames, video.indices, strict=True):
        assert np.array_equal(frame, truth[i])
    assert np.allclose(video.timestamps, times[video.indices], atol=1e-6)


def test_variable_frame_rate_uses_real_timestamps_and_cuts_by_them(tmp_path):
    pts_ms = [0, 40, 80, 200, 220, 400, 410, 420, 700, 1000]
    path = write_clip(str(tmp_path / "vfr.mkv"), frames(10), pts_ms=pts_ms)
    whole = decode_video(path)
    assert whole.n_frames == 10
    assert np.allclose(whole.timestamps, np.asarray(pts_ms)[whole.indices] / 1000)
    clip = decode_video(path, start=0.1, end=0.41)  # by time: frames at 0.2, 0.22, 0.4
    assert clip.n_frames == 3 and clip.indices.tolist() == [3 + i for i in MERV32[3]]
    assert np.array_equal(clip.frames[0], whole.frames[np.searchsorted(whole.indices, 3)])


def test_clip_bounds_select_frames_by_time(tmp_path):
    raw = frames(48)
    path = lossless(str(tmp_path / "whole.mp4"), raw)  # 16 fps: frame i at i/16 s
    clip = decode_video(path, start=1.0, end=2.0)
    assert (clip.n_frames, clip.indices[0], clip.indices[-1]) == (16, 16, 31)
    assert clip.indices.tolist() == [16 + i for i in MERV32[16]]
    assert np.allclose(clip.timestamps, clip.indices / 16) and clip.duration == pytest.approx(1.0)
    cut = decode_video(lossless(str(tmp_path / "cut.mp4"), raw[16:32]))
    assert np.array_equal(clip.frames, cut.frames)  # the same pixels as a file of just the clip
    assert clip_range(np.arange(48) / 16, None, 0.5) == (0, 8)
    with pytest.raises(DecodeError, match="^no-frames:"):
        decode_video(path, start=5.0)


def test_huge_frames_are_shrunk_while_decoding(tmp_path):
    path = write_clip(
        str(tmp_path / "big.mp4"), frames(3, 2400, 4000), options={"preset": "ultrafast"}
    )
    for decoders in (("pyav-seek",), ("decord",), ("pyav",)):
        video = decode_video(path, decoders=decoders)
        assert video.frames.shape == (32, 1080, 1800, 3)  # short side 1080, aspect kept
        assert (video.source_height, video.source_width) == (2400, 4000)
        assert "resized from 4000x2400" in video.note
        assert video.frames[0, :200, :550, 0].mean() > 200  # the red marker is still top-left
    small = decode_video(path, settings=DecodeSettings("fast", short_side=224))
    assert small.frames.shape[1:3] == (224, 374)
    assert small.frames[0, :40, :110, 0].mean() > 200


def test_truncated_file_keeps_the_frames_it_has(tmp_path):
    path = write_clip(
        str(tmp_path / "f.mp4"), frames(40), container_options={"movflags": "faststart"}
    )
    data = open(path, "rb").read()
    (tmp_path / "cut.mp4").write_bytes(data[: int(len(data) * 0.8)])
    video = decode_video(str(tmp_path / "cut.mp4"))
    truth, _ = _truth(str(tmp_path / "cut.mp4"))
    assert video.n_frames == len(truth) < 40 and "salvaged" in video.note
    assert all(
        np.array_equal(f, truth[i]) for f, i in zip(video.frames, video.indices, strict=True)
    )


def test_remote_sources_are_copied_and_tar_members_read_by_range(tmp_path):
    import fsspec

    path = write_clip(str(tmp_path / "v.mp4"), frames(12))
    local = decode_video(path)
    fsspec.filesystem("memory").pipe("/remote/v.mp4", open(path, "rb").read())
    remote = decode_video("memory:///remote/v.mp4")
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        tar.add(str(tmp_path / "v.mp4"), arcname="key.mp4")
    with tarfile.open(tmp_path / "s.tar") as tar:
        info = tar.getmember("key.mp4")
    member = TarMember(str(tmp_path / "s.tar"), info.offset_data, info.size)
    from_tar = decode_video(f"tar://key.mp4::{tmp_path / 's.tar'}", member=member)
    scanned = decode_video(f"tar://key.mp4::{tmp_path / 's.tar'}")  # no range: fsspec tar scan
    for other in (remote, from_tar, scanned):
        assert np.array_equal(other.frames, local.frames)
        assert np.array_equal(other.timestamps, local.timestamps)
    with pytest.raises(DecodeError, match="^too-large:"):
        with fetch.open_local("memory:///remote/v.mp4", max_bytes=100):
            pass
    with pytest.raises(DecodeError, match="^missing:"):
        decode_video("memory:///remote/nothing.mp4")


def test_retry_is_bounded_and_only_for_transient_errors(monkeypatch):
    monkeypatch.setattr(fetch, "BACKOFF_S", 0.0)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return "data"

    assert fetch.with_retry(flaky, backoff=0) == "data" and len(calls) == 3
    calls.clear()

    def always_down():
        calls.append(1)
        raise TimeoutError("timed out")

    with pytest.raises(TimeoutError):
        fetch.with_retry(always_down, backoff=0)
    assert len(calls) == fetch.RETRIES
    calls.clear()

    def gone():
        calls.append(1)
        raise FileNotFoundError("404")

    with pytest.raises(FileNotFoundError):
        fetch.with_retry(gone, backoff=0)
    assert len(calls) == 1  # permanent: never retried
    err = fetch.classify_read_error(FileNotFoundError("x"), "u")
    assert err.kind == "missing"
    try:
        raise FileNotFoundError("http://h/x") from ConnectionRefusedError("refused")
    except FileNotFoundError as wrapped:  # fsspec's HTTP layer hides refusals like this
        assert fetch.classify_read_error(wrapped, "u").kind == "unreachable"


def test_work_rows_carry_the_listing_to_the_decode_task(tmp_path, monkeypatch):
    """list -> work rows -> decode task, without Ray: tar members are read by their recorded byte
    range with the job's fsspec options, and a failure decided at listing time is not decoded."""
    path = write_clip(str(tmp_path / "v.mp4"), frames(12))
    with tarfile.open(tmp_path / "s.tar", "w") as tar:
        for key in ("whole", "clip", "bad"):
            tar.add(path, arcname=f"{key}.mp4")
        for key, bounds in (("clip", b'{"start": 0.25, "end": 0.5}'), ("bad", b'{"end": -1}')):
            info = tarfile.TarInfo(f"{key}.json")
            info.size = len(bounds)
            tar.addfile(info, io.BytesIO(bounds))
    items = list_videos(str(tmp_path / "s.tar"), storage_options={"timeout": "5"})
    calls = {}

    def recording(source, num_frames, **kw):
        calls[source] = kw
        return decode_video(source, num_frames, **{**kw, "storage_options": None})

    monkeypatch.setattr(decode_rows_module, "decode_video", recording)
    ids = [it.video_id for it in items]
    work = SimpleNamespace(rows=range(3), encoders_by_row=dict.fromkeys(range(3), ("e",)))
    table = work_table([work], ids, items)
    out = decode_rows({k: np.asarray(v) for k, v in table.to_pydict().items()}, 32)
    rows = {vid: {k: v[i] for k, v in out.items()} for i, vid in enumerate(out["video_id"])}
    assert not set(LISTING_COLUMNS) & set(out)
    assert [str(rows[k]["status"]) for k in ("bad", "clip", "whole")] == ["failed", "ok", "ok"]
    assert str(rows["bad"]["error"]).startswith("invalid-clip:")
    with tarfile.open(tmp_path / "s.tar") as tar:
        info = tar.getmember("whole.mp4")
    shard = str(tmp_path / "s.tar")
    whole = calls[f"tar://whole.mp4::{shard}"]
    assert whole["member"] == TarMember(shard, info.offset_data, info.size)
    assert whole["storage_options"] == {"timeout": 5}
    assert len(calls) == 2  # "bad" failed at listing: never read
    assert np.array_equal(rows["whole"]["frames"], decode_video(path).frames)
    clip = decode_video(path, start=0.25, end=0.5)
    assert np.array_equal(rows["clip"]["frames"], clip.frames)
    extra = json.loads(str(rows["clip"]["extra"]))
    assert (extra["clip_start"], extra["clip_end"]) == (0.25, 0.5)
